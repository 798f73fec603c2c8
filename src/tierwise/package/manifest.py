"""The manifest of an edge package: what is in it, how well each variant does, and how to trust it.

A package is a directory::

    manifest.json      this model, serialized canonically (sorted keys, no timestamps)
    manifest.sig       detached Ed25519 signature of manifest.json's exact bytes (signing.py)
    model-fp32.onnx    one file per variant, each listed in `files` with its sha256
    model-int8.onnx
    router-int8.onnx   the learned escalation rule of a variant, when the cascade has one
    prototypes-int8.onnx  the prototypes escalation rule of a variant, likewise

Every path in the manifest is relative (posix, no `..`), so a package verifies and runs
wherever it is copied. The same inputs give the same bytes: the only figures that differ from
one build to the next are the latency measurements, which are measurements of the machine.

Edge side: this module needs only pydantic and the standard library.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
FORMAT_VERSION = 2  # 2: a cascade curve per escalation rule
HASH_CHUNK = 1 << 20


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSchema(_Frozen):
    """The single input tensor: a float32 batch of feature vectors."""

    name: str
    dtype: Literal["float32"] = "float32"
    features: int = Field(ge=1, description="length of one input vector")


class OutputSchema(_Frozen):
    """Where the class probabilities come out, and which label each column stands for."""

    probabilities: str = Field(description="name of the ONNX output holding [N, classes]")
    classes: list[int] | list[str] = Field(min_length=2)


class LatencyStats(_Frozen):
    """ONNX Runtime time per call (one thread) at one batch size, in milliseconds."""

    batch: int = Field(ge=1)
    p50_ms: float = Field(ge=0)
    p99_ms: float = Field(ge=0)
    mean_ms: float = Field(ge=0)
    runs: int = Field(ge=1)


class VariantEntry(_Frozen):
    """One build of the model (fp32, int8, distilled, pruned...) with its measured figures."""

    name: str
    file: str
    size_bytes: int = Field(ge=0)
    accuracy: float = Field(ge=0, le=1)
    quantization: Literal["none", "static", "dynamic"]
    latency: list[LatencyStats] = Field(default_factory=list)
    method: Literal["export", "distilled", "pruned", "sparse"] = Field(
        "export",
        description="export: the model as given; distilled: a smaller MLP trained on the "
        "teacher's probabilities; pruned: hidden units removed; sparse: weights zeroed "
        "(package/variants.py)",
    )
    macs: int | None = Field(
        None,
        ge=0,
        description="multiply-accumulates per input row of its matrix products (what a "
        "hardware profile scales); None for graphs without any, like trees",
    )
    sparsity: float = Field(0.0, ge=0, le=1, description="share of its weights exactly zero")

    def latency_at(self, batch: int) -> LatencyStats | None:
        return next((s for s in self.latency if s.batch == batch), None)


class CurvePoint(_Frozen):
    """Escalate when the rule's score < threshold: the share escalated and the joint accuracy."""

    threshold: float = Field(ge=0, le=1.000001)
    escalated: float = Field(ge=0, le=1)
    accuracy: float = Field(ge=0, le=1)
    tie_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="of the rows scoring exactly the threshold, the share escalated too (by "
        "rules.escalation.tie_draws), so that tied scores can spend a budget exactly",
    )
    local_error_bound: float | None = Field(
        None,
        ge=0,
        le=1,
        description="95% Clopper-Pearson upper bound on the edge's error rate among the "
        "answers kept local, from the evaluation rows (valid for data exchangeable with them)",
    )


class Reference(_Frozen):
    """The cloud model the cascade escalates to, as measured on the same evaluation data."""

    name: str
    kind: str = Field(description="sklearn, torch, onnx or package")
    sha256: str = Field(description="of the reference model file as given")
    accuracy: float = Field(ge=0, le=1)
    size_bytes: int = Field(ge=0)


class RuleCurve(_Frozen):
    """One escalation rule (rules/routers) for one variant: what it needs, and its curve."""

    curve: list[CurvePoint] = Field(min_length=1)
    temperature: float | None = Field(None, gt=0, description="the temperature rule's fitted T")
    file: str | None = Field(
        None, description="the learned or prototypes rule's ONNX model (listed in files)"
    )


class DriftReference(_Frozen):
    """The evaluation rows binned: the yardstick a site's stream is compared with for drift
    (rules/drift.py says how values are binned and how counts are tested)."""

    rows: int = Field(ge=1, description="evaluation rows counted")
    edges: list[list[float]] = Field(
        description="per input column: its minimum, deciles and just above its maximum"
    )
    counts: list[list[int]] = Field(description="per input column: rows per bin (edges + 1)")
    confidence: dict[str, list[int]] = Field(
        description="per variant: rows per bin of the top probability (rules/drift.py)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> DriftReference:
        if len(self.counts) != len(self.edges):
            raise ValueError(f"{len(self.edges)} columns of edges but {len(self.counts)} of counts")
        for j, (edges, counts) in enumerate(zip(self.edges, self.counts, strict=True)):
            if len(counts) != len(edges) + 1 or sum(counts) != self.rows:
                raise ValueError(
                    f"column {j}: {len(edges)} edges need {len(edges) + 1} counts "
                    f"summing to {self.rows} rows"
                )
            if any(b <= a for a, b in itertools.pairwise(edges)):
                raise ValueError(f"column {j}: edges must increase")
        for variant, counts in self.confidence.items():
            # A reference rebased on a site's field summaries (tierwise.learn) counts inputs
            # and confidences over different rows, so only a positive total is required.
            if sum(counts) < 1 or min(counts) < 0:
                raise ValueError(f"confidence of {variant}: counts must be >= 0, not all 0")
        return self


class CascadeCalibration(_Frozen):
    """Per edge variant and escalation rule: for each threshold, escalated share and accuracy."""

    reference: Reference
    rules: dict[str, dict[str, RuleCurve]] = Field(
        description="variant -> rule name -> its parameters and calibration curve"
    )
    best_rule: dict[str, str] = Field(
        description="per variant, the closed-form or prototypes rule ranking the edge's wrong "
        "answers first best (error AUROC on the eval rows and router data); max_probability "
        "on ties"
    )
    oracle_escalated: dict[str, float] = Field(
        description="per variant, its error rate: the share a perfect router would escalate"
    )

    def rule(self, variant: str, rule: str | None = None) -> RuleCurve:
        """A variant's curve for `rule` (default: its best rule)."""
        by_rule = self.rules[variant]
        name = rule or self.best_rule[variant]
        if name not in by_rule:
            raise KeyError(f'no curve for rule "{name}"; the package has {", ".join(by_rule)}')
        return by_rule[name]

    def curve(self, variant: str, rule: str | None = None) -> list[CurvePoint]:
        return self.rule(variant, rule).curve

    def threshold_for(
        self, variant: str, max_escalated: float, rule: str | None = None
    ) -> CurvePoint:
        """The most accurate point escalating at most `max_escalated` (the fewest on ties)."""
        fitting = [p for p in self.curve(variant, rule) if p.escalated <= max_escalated + 1e-12]
        return max(fitting, key=lambda p: (p.accuracy, -p.escalated))

    def at_budget(self, variant: str, max_escalated: float, rule: str | None = None) -> CurvePoint:
        """The point spending the budget: the most escalations not above `max_escalated`.

        On unseen data this is the safer pick when several points tie on the evaluation
        data (they tie because the evaluation set is small, not because escalating is free).
        """
        fitting = [p for p in self.curve(variant, rule) if p.escalated <= max_escalated + 1e-12]
        return max(fitting, key=lambda p: (p.escalated, p.accuracy))


class BuildInfo(_Frozen):
    """How the package was made: enough to rebuild it, nothing machine-specific."""

    tool: str
    source_kind: Literal["sklearn", "torch", "onnx"]
    source_sha256: str
    eval_data: str = Field(description="scenario name or the npz file's name (no directory)")
    eval_samples: int = Field(ge=1)
    calibration_samples: int = Field(ge=0, description="inputs used for static quantization")


class Manifest(_Frozen):
    """Everything a planner, an edge agent or an auditor needs to know about a package."""

    format: int = FORMAT_VERSION
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    version: int = Field(ge=1, description="monotonically increasing per model name")
    files: dict[str, str] = Field(description="relative posix path -> sha256 hex")
    input: InputSchema
    output: OutputSchema
    variants: list[VariantEntry] = Field(min_length=1)
    cascade: CascadeCalibration | None = None
    drift: DriftReference | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    build: BuildInfo

    @field_validator("format")
    @classmethod
    def _known_format(cls, format: int) -> int:
        if format != FORMAT_VERSION:
            raise ValueError(
                f"package format {format}, this tierwise reads format {FORMAT_VERSION}: "
                "rebuild the package with this version's `tierwise package`"
            )
        return format

    @field_validator("files")
    @classmethod
    def _relative_paths(cls, files: dict[str, str]) -> dict[str, str]:
        for path, digest in files.items():
            check_relative_path(path)
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"files[{path!r}]: expected a sha256 hex digest")
            if path in (MANIFEST_NAME, SIGNATURE_NAME):
                raise ValueError(f"files may not list {path}")
        return files

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        for v in self.variants:
            if v.file not in self.files:
                raise ValueError(f"variant {v.name}: file {v.file} is not listed in files")
        if self.cascade is not None:
            unknown = set(self.cascade.rules) - set(names)
            if unknown:
                raise ValueError(f"cascade curves for unknown variants: {sorted(unknown)}")
            for variant, rules in self.cascade.rules.items():
                for rule, entry in rules.items():
                    if entry.file is not None and entry.file not in self.files:
                        raise ValueError(
                            f"cascade {variant} {rule}: file {entry.file} is not listed in files"
                        )
                if self.cascade.best_rule.get(variant) not in rules:
                    raise ValueError(f"cascade {variant}: best_rule names no rule it has")
        if self.drift is not None:
            if len(self.drift.edges) != self.input.features:
                raise ValueError(
                    f"drift reference bins {len(self.drift.edges)} input columns, the input "
                    f"has {self.input.features}"
                )
            # every variant has one, except in a reference rebased on the field
            # (package/drift_reference.py's FieldReference): quantized variants have none
            if not set(self.drift.confidence) <= set(names):
                raise ValueError("drift reference: a confidence histogram of no variant")
        return self

    def variant(self, name: str | None = None) -> VariantEntry:
        """A variant by name; without a name the smallest file (what a gateway runs by default)."""
        if name is None:
            return min(self.variants, key=lambda v: v.size_bytes)
        for v in self.variants:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in self.variants)
        raise KeyError(f'package {self.name} has no variant "{name}"; it has {known}')


def check_relative_path(path: str) -> None:
    """Refuse absolute paths, `..`, backslashes and empty parts: a manifest may not point out."""
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ValueError(f"{path!r} is not a plain relative path inside the package")


def manifest_bytes(manifest: Manifest) -> bytes:
    """The canonical serialization: sorted keys, two-space indent, UTF-8, one final newline."""
    data = manifest.model_dump(mode="json")
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def parse_manifest(raw: bytes) -> Manifest:
    """Parse manifest bytes (raises pydantic.ValidationError or ValueError on bad input)."""
    return Manifest.model_validate_json(raw)


def read_manifest(package_dir: str | Path) -> Manifest:
    """Read a package's manifest without checking its signature (for planning, not trusting)."""
    return parse_manifest((Path(package_dir) / MANIFEST_NAME).read_bytes())


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_files(package_dir: str | Path) -> tuple[dict[str, Path], list[str]]:
    """Payload files of a package dir by relative posix path, and anything that is not a file.

    manifest.json and manifest.sig are not payload. Symlinks and special files are returned
    in the second list: a package is refused if it holds any (a link could point anywhere).
    """
    root = Path(package_dir)
    files: dict[str, Path] = {}
    odd: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                odd.append((here / d).relative_to(root).as_posix())
                dirnames.remove(d)
        for f in filenames:
            path = here / f
            rel = path.relative_to(root).as_posix()
            if rel in (MANIFEST_NAME, SIGNATURE_NAME):
                continue
            if path.is_symlink() or not path.is_file():
                odd.append(rel)
            else:
                files[rel] = path
    return dict(sorted(files.items())), sorted(odd)
