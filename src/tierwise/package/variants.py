"""The variants a package can carry, and how each is made from the exported model.

- `fp32`: the model exported to ONNX (export.py); every other variant starts here.
- `int8`: fp32 quantized (quantize.py); needs a MatMul/Gemm graph.
- `distilled`: a small MLP trained on the teacher's probabilities (distill.py).
- `distilled-int8`: `distilled` quantized.
- `pruned`: the edge MLP with its weakest hidden units removed, fine-tuned (pruning.py).
- `pruned-int8`: `pruned` quantized.
- `sparse`: the edge MLP with 80% of its weights zeroed, fine-tuned, stored dense: the
  measurement that unstructured sparsity alone shrinks nothing in ONNX (docs/package.md).

Distilled variants need training inputs; pruned and sparse ones also an MLP to read
(a scikit-learn MLPClassifier or a PyTorch Sequential of Linear/ReLU, dense.py).
The teacher is the cascade's cloud model (`--cloud-model`), else the edge model itself.
"Training inputs" are the evaluation data's `x_calibration` (a sample of the training
split): distilling or fine-tuning on the evaluation rows would grade a model on what it
learned from. A variant that cannot be made is left out with a note saying why, as INT8 is
for a tree today. `tierwise package` builds `fp32,int8` unless told `--variants`.

Build side: torch, onnx and scikit-learn are imported inside functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import UsageError
from tierwise.package.dense import DenseNet, dense_net, graph_macs, to_onnx
from tierwise.package.distill import DistillOptions
from tierwise.package.evaldata import EvalData
from tierwise.package.export import ExportedModel
from tierwise.package.pruning import PruneOptions
from tierwise.package.quantize import Quantized, quantize

Method = Literal["export", "distilled", "pruned", "sparse"]
Quantization = Literal["none", "static", "dynamic"]

BASES: dict[str, Method] = {
    "fp32": "export",
    "distilled": "distilled",
    "pruned": "pruned",
    "sparse": "sparse",
}
QUANTIZED = {"int8": "fp32", "distilled-int8": "distilled", "pruned-int8": "pruned"}
KINDS = ("fp32", "int8", "distilled", "distilled-int8", "pruned", "pruned-int8", "sparse")
DEFAULT_VARIANTS = ("fp32", "int8")
INT8_SUFFIX = "-int8"


@dataclass(frozen=True)
class CompressOptions:
    distill: DistillOptions = field(default_factory=DistillOptions)
    prune: PruneOptions = field(default_factory=PruneOptions)


@dataclass(frozen=True)
class BuiltVariant:
    """One variant's ONNX bytes and how it was made."""

    name: str
    onnx: bytes
    method: Method
    quantization: Quantization
    macs: int | None
    sparsity: float = 0.0


@dataclass
class BuiltVariants:
    variants: dict[str, BuiltVariant]
    notes: list[str]
    calibration_samples: int = 0


def parse_variants(text: str) -> tuple[str, ...]:
    """`--variants fp32,int8,distilled`: known names, each once, fp32 always (the others are
    measured against it) and first."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in KINDS]
    if unknown:
        raise UsageError(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(KINDS)}")
    if len(set(names)) != len(names):
        raise UsageError(f"--variants: {text!r} names a variant twice")
    return ("fp32", *(n for n in names if n != "fp32"))


def compress_options(student_hidden: str) -> CompressOptions:
    """`--student-hidden 128` or `64,32`: the distilled student's hidden layer widths."""
    try:
        hidden = tuple(int(w) for w in student_hidden.split(","))
    except ValueError:
        hidden = ()
    if not hidden or min(hidden) < 1:
        raise UsageError(
            f"--student-hidden: expected widths like 128 or 64,32, got {student_hidden!r}"
        )
    return CompressOptions(distill=DistillOptions(hidden=hidden))


def build_variants(
    exported: ExportedModel,
    model: Path,
    data: EvalData,
    wanted: tuple[str, ...],
    cloud_model: Path | None,
    options: CompressOptions,
    progress: Callable[[str], None],
) -> BuiltVariants:
    """Every variant in `wanted` that can be made from this model and data."""
    notes: list[str] = []
    bases: dict[str, BuiltVariant] = {
        "fp32": BuiltVariant("fp32", exported.onnx, "export", "none", graph_macs(exported.onnx))
    }
    needed_bases = {QUANTIZED.get(n, n) for n in wanted}
    for base in ("distilled", "pruned", "sparse"):
        if base not in needed_bases:
            continue
        made = _make_base(base, exported, model, data, cloud_model, options, progress)
        if isinstance(made, str):
            notes.append(f"no {base} variant{'s' if base != 'sparse' else ''}: {made}")
        else:
            bases[base] = made
    out = {n: bases[n] for n in wanted if n in bases}
    calibration = data.x if data.x_calibration is None else data.x_calibration
    samples = 0
    for name in wanted:
        source = QUANTIZED.get(name)
        if source is None or source not in bases:
            continue
        what = "" if source == "fp32" else f"{source} "
        progress(f"quantizing {what}to INT8 ({len(calibration)} calibration inputs available)")
        src = bases[source]
        q = quantize(src.onnx, exported.input_name, calibration)
        if isinstance(q, Quantized):
            out[name] = BuiltVariant(name, q.onnx, src.method, q.mode, src.macs, src.sparsity)
            samples = max(samples, q.calibration_samples)
        else:
            notes.append(f"no {name.upper() if name == 'int8' else name} variant: {q}")
    ordered = {n: out[n] for n in wanted if n in out}
    return BuiltVariants(ordered, notes, samples)


def _make_base(
    kind: str,
    exported: ExportedModel,
    model: Path,
    data: EvalData,
    cloud_model: Path | None,
    options: CompressOptions,
    progress: Callable[[str], None],
) -> BuiltVariant | str:
    """A distilled, pruned or sparse fp32 variant, or why it cannot be made."""
    x_train = data.x_calibration
    if x_train is None:
        return (
            "the evaluation data holds no training inputs (x_calibration) to train on, and "
            "training on the evaluation rows would grade the model on what it learned"
        )
    if kind == "distilled":
        from tierwise.package.distill import distill

        teacher, who = _teacher(exported, cloud_model)
        hidden = "x".join(map(str, options.distill.hidden))
        progress(f"distilling {who} into an MLP-{hidden} on {len(x_train)} training inputs")
        net = distill(teacher, x_train, options.distill)
    else:
        from tierwise.package.pruning import structured_prune, unstructured_prune

        source = _load_dense(exported, model)
        if isinstance(source, str):
            return source
        if kind == "pruned":
            keep = options.prune.keep_units
            progress(f"pruning {1 - keep:.0%} of the hidden units of {_shape(source.hidden)}")
            net = structured_prune(source, x_train, options.prune)
        else:
            share = options.prune.sparsity
            progress(f"zeroing {share:.0%} of the weights of {_shape(source.hidden)}")
            net = unstructured_prune(source, x_train, options.prune)
    onnx = to_onnx(net, f"{kind}", exported.input_name, exported.probabilities)
    method: Method = BASES[kind]
    return BuiltVariant(kind, onnx, method, "none", net.macs, round(net.sparsity, 4))


def _teacher(
    exported: ExportedModel, cloud_model: Path | None
) -> tuple[Callable[[NDArray[np.float32]], NDArray[np.float32]], str]:
    if cloud_model is not None:
        from tierwise.package.reference import reference_probabilities

        classes = list(exported.classes)
        return (lambda x: reference_probabilities(cloud_model, x, classes)), cloud_model.name
    from tierwise.package.measure import Scorer

    scorer = Scorer(exported.onnx, exported.input_name, exported.probabilities)
    return scorer.probabilities, "the edge model (no --cloud-model to learn from)"


def _load_dense(exported: ExportedModel, model: Path) -> DenseNet | str:
    from tierwise.package.export import load_sklearn, load_torch

    if exported.kind == "onnx":
        return "pruning reads an MLP's weights from scikit-learn or PyTorch, not from ONNX"
    loaded = load_sklearn(model) if exported.kind == "sklearn" else load_torch(model)
    return dense_net(loaded)


def _shape(hidden: tuple[int, ...]) -> str:
    return "MLP-" + "x".join(map(str, hidden))
