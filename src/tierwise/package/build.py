"""Build a signed edge package: export, quantize, evaluate, calibrate the cascade, sign.

The package is assembled in a scratch directory beside `out` and renamed into place only when
it is complete and signed, so `out` never holds half a package.

Build side: pulls in the exporters (sklearn/torch/onnx) lazily through export.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tierwise import __version__
from tierwise.errors import UsageError
from tierwise.package.drift_reference import FieldReference, drift_reference
from tierwise.package.evaldata import EvalData
from tierwise.package.export import ExportedModel, export_model
from tierwise.package.keys import load_private_key
from tierwise.package.manifest import (
    MANIFEST_NAME,
    BuildInfo,
    CascadeCalibration,
    InputSchema,
    Manifest,
    OutputSchema,
    VariantEntry,
    manifest_bytes,
    sha256_bytes,
)
from tierwise.package.measure import (
    DEFAULT_BATCHES,
    DEFAULT_RUNS,
    Scorer,
    accuracy,
    measure_latency,
)
from tierwise.package.signing import sign_package
from tierwise.package.variants import (
    DEFAULT_VARIANTS,
    CompressOptions,
    build_variants,
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    name: str
    version: int
    sign_key: Path
    cloud_model: Path | None = None
    batches: tuple[int, ...] = DEFAULT_BATCHES
    latency_runs: int = DEFAULT_RUNS
    force: bool = False
    variants: tuple[str, ...] = DEFAULT_VARIANTS  # package/variants.py: KINDS
    compress: CompressOptions = field(default_factory=CompressOptions)
    # the drift yardstick from the field, not from `data` (a retraining for drifted sites)
    field_reference: FieldReference | None = None


@dataclass
class BuildResult:
    manifest: Manifest
    path: Path
    notes: list[str] = field(default_factory=list)  # e.g. why there is no INT8 variant


def build_package(
    model: str | Path,
    data: EvalData,
    out: str | Path,
    options: BuildOptions,
    progress: Progress = lambda _: None,
) -> BuildResult:
    """Write a complete, signed package for `model` to `out` and return its manifest."""
    out = Path(out)
    if options.version < 1:
        raise UsageError(f"--version must be 1 or more, got {options.version}")
    if out.exists() and any(out.iterdir()) and not options.force:
        raise UsageError(f"{out} already exists and is not empty; pick another --out or --force")
    private_key = load_private_key(options.sign_key)  # fail before minutes of work
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch_dir = tempfile.TemporaryDirectory(
        prefix=f".{out.name}-", dir=out.parent, ignore_cleanup_errors=True
    )
    with scratch_dir as scratch:
        result = _assemble(Path(scratch), model, data, options, progress)
        sign_package(scratch, private_key)
        progress(f"signed; moving the package to {out}")
        if out.exists():
            shutil.rmtree(out)
        os.rename(scratch, out)  # same parent, so one atomic rename
        out.chmod(0o755)  # mkdtemp made it 0700; a package is meant to be read by others
    result.path = out
    return result


def _assemble(
    root: Path, model: str | Path, data: EvalData, options: BuildOptions, progress: Progress
) -> BuildResult:
    progress(f"exporting {Path(model).name} to ONNX")
    exported = export_model(model, data.x, data.y)
    made = build_variants(
        exported,
        Path(model),
        data,
        options.variants,
        options.cloud_model,
        options.compress,
        progress,
    )
    notes = list(made.notes)
    built = made.variants
    files = {_variant_file(name): v.onnx for name, v in built.items()}

    scorers = {
        name: Scorer(v.onnx, exported.input_name, exported.probabilities)
        for name, v in built.items()
    }
    progress(f"evaluating {', '.join(scorers)} on {len(data.x)} held-out samples")
    probabilities = {name: s.probabilities(data.x) for name, s in scorers.items()}
    accuracies = {name: accuracy(p, data.y, exported.classes) for name, p in probabilities.items()}
    latency = measure_latency(scorers, data.x, options.batches, options.latency_runs, progress)

    cascade = None
    if options.cloud_model is not None:
        # the out-of-fold router data are the edge model's outputs: they stand for its
        # quantized and pruned forms too, not for a distilled student (another model), whose
        # rules are cross-fitted on the evaluation rows instead (package/routers.py)
        own_router_data = {name for name, v in built.items() if v.method != "distilled"}
        cascade, router_files, router_notes = _calibrate(
            options.cloud_model, data, exported, probabilities, own_router_data, progress
        )
        files.update(router_files)
        notes.extend(router_notes)

    for rel, blob in files.items():
        (root / rel).write_bytes(blob)
    variants = [
        VariantEntry(
            name=name,
            file=_variant_file(name),
            size_bytes=len(v.onnx),
            accuracy=accuracies[name],
            quantization=v.quantization,
            latency=latency[name],
            method=v.method,
            macs=v.macs,
            sparsity=v.sparsity,
        )
        for name, v in built.items()
    ]
    manifest = Manifest(
        name=options.name,
        version=options.version,
        files={rel: sha256_bytes(blob) for rel, blob in sorted(files.items())},
        input=InputSchema(name=exported.input_name, features=int(data.x.shape[1])),
        output=OutputSchema(probabilities=exported.probabilities, classes=exported.classes),
        variants=variants,
        cascade=cascade,
        drift=drift_reference(data.x, probabilities)
        if options.field_reference is None
        else options.field_reference.reference(
            [v.name for v in variants if v.quantization == "none"]
        ),
        metrics=_metrics(variants, cascade),
        build=BuildInfo(
            tool=f"tierwise {__version__}",
            source_kind=exported.kind,
            source_sha256=exported.source_sha256,
            eval_data=data.source,
            eval_samples=len(data.x),
            calibration_samples=made.calibration_samples,
        ),
    )
    (root / MANIFEST_NAME).write_bytes(manifest_bytes(manifest))
    return BuildResult(manifest, root, notes)


def _calibrate(
    cloud_model: Path,
    data: EvalData,
    exported: ExportedModel,
    probabilities: dict[str, np.ndarray],
    own_router_data: set[str],
    progress: Progress,
) -> tuple[CascadeCalibration, dict[str, bytes], list[str]]:
    """The cascade against the cloud model: every escalation rule's curve per variant, the
    learned routers' files, and notes on rules that could not be fitted."""
    from tierwise.package.reference import reference_answers
    from tierwise.package.routers import RouterData, fit_rules

    progress(f"asking the cloud model {cloud_model.name} for its answers")
    cloud_labels, reference = reference_answers(cloud_model, data.x, data.y)
    cloud_correct = np.asarray(cloud_labels == data.y)
    router_data = None
    if data.router_p is not None and data.router_y is not None:
        if data.router_p.shape[1] != len(exported.classes):
            raise UsageError(
                f"{data.source}: router_p has {data.router_p.shape[1]} columns, the model has "
                f"{len(exported.classes)} classes"
            )
        if data.router_x is not None and data.router_x.shape != (
            len(data.router_p),
            data.x.shape[1],
        ):
            raise UsageError(
                f"{data.source}: router_x must be [{len(data.router_p)}, {data.x.shape[1]}] "
                f"(a row of x's width per row of router_p), got {list(data.router_x.shape)}"
            )
        router_data = RouterData(data.router_p, data.router_y, data.router_x)
    rules, best, oracle = {}, {}, {}
    files: dict[str, bytes] = {}
    notes: list[str] = []
    classes = list(exported.classes)
    for name, probs in probabilities.items():
        progress(f"fitting the escalation rules for {name}")
        mine = router_data if name in own_router_data else None
        fitted = fit_rules(name, probs, data.x, data.y, classes, cloud_correct, mine)
        rules[name], best[name] = fitted.rules, fitted.best
        files.update(fitted.files)
        notes.extend(f"{name}: {note}" for note in fitted.notes)
        predicted = np.asarray(classes)[probs.argmax(axis=1)]
        oracle[name] = float(np.mean(predicted != data.y))
    calibration = CascadeCalibration(
        reference=reference, rules=rules, best_rule=best, oracle_escalated=oracle
    )
    return calibration, files, notes


def _metrics(variants: list[VariantEntry], cascade: CascadeCalibration | None) -> dict[str, float]:
    """Headline ratios of every variant against fp32, so a reader need not compute them."""
    by_name = {v.name: v for v in variants}
    metrics: dict[str, float] = {}
    fp32 = by_name.get("fp32")
    for variant in variants:
        if fp32 is None or variant is fp32:
            continue
        key = variant.name.replace("-", "_")
        metrics[f"{key}_size_ratio"] = round(variant.size_bytes / fp32.size_bytes, 4)
        metrics[f"{key}_accuracy_drop_points"] = round((fp32.accuracy - variant.accuracy) * 100, 4)
        for stats in fp32.latency:
            other = variant.latency_at(stats.batch)
            if other is not None and other.p50_ms > 0:
                metrics[f"{key}_speedup_p50_batch{stats.batch}"] = round(
                    stats.p50_ms / other.p50_ms, 3
                )
    if cascade is not None:
        metrics["reference_accuracy"] = cascade.reference.accuracy
    return metrics


def _variant_file(name: str) -> str:
    return f"model-{name}.onnx"
