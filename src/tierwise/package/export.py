"""Turn a trained classifier — scikit-learn (joblib), PyTorch or ONNX — into one fp32 ONNX graph.

Whatever the source, the result has one float32 input [N, features] and one output of class
probabilities [N, classes], so the runtime, the quantizer and the evaluator see one shape:

- scikit-learn: any classifier skl2onnx converts (pipelines included), exported without
  ZipMap so probabilities stay a tensor; classes come from `classes_`.
- PyTorch: a TorchScript archive (`torch.jit.save`) or a pickled `nn.Module` (`torch.save`),
  mapping [N, features] to logits (a Softmax node is appended to the exported graph) or to
  probabilities (kept as they are); classes from a `classes` attribute, else the sorted
  labels of the evaluation data.
- ONNX: kept as is when an output already holds probabilities; a Softmax is appended to a
  logits output. Classes from the metadata entry `classes` (JSON list), else the labels.

joblib and torch.load run code from the file: package only models you trust.
Build side: heavy imports (sklearn, skl2onnx, torch, onnx) happen inside functions.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import MissingDependencyError, UsageError
from tierwise.package.manifest import sha256_file

SourceKind = Literal["sklearn", "torch", "onnx"]
SKLEARN_SUFFIXES = (".joblib", ".pkl", ".pickle")
TORCH_SUFFIXES = (".pt", ".pth", ".torchscript")
ONNX_OPSET = 17
PROBABILITY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ExportedModel:
    """An fp32 ONNX graph with one input and a probabilities output."""

    kind: SourceKind
    source_sha256: str
    onnx: bytes
    input_name: str
    probabilities: str
    classes: list[Any]


def source_kind(path: Path) -> SourceKind:
    suffix = path.suffix.lower()
    if suffix in SKLEARN_SUFFIXES:
        return "sklearn"
    if suffix in TORCH_SUFFIXES:
        return "torch"
    if suffix == ".onnx":
        return "onnx"
    known = ", ".join((*SKLEARN_SUFFIXES, *TORCH_SUFFIXES, ".onnx"))
    raise UsageError(f"{path}: unknown model format {suffix or '(no suffix)'}; expected {known}")


def export_model(path: str | Path, x: NDArray[np.float32], y: NDArray[Any]) -> ExportedModel:
    """Load the model at `path` and export it; `x`, `y` (evaluation data) give shapes and labels."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such model file")
    kind = source_kind(path)
    digest = sha256_file(path)
    if kind == "sklearn":
        onnx_bytes, input_name, output, classes = _from_sklearn(load_sklearn(path), x)
    elif kind == "torch":
        onnx_bytes, input_name, output, classes = _from_torch(load_torch(path), x, y)
    else:
        onnx_bytes, input_name, output, classes = _from_onnx(path, x, y)
    return ExportedModel(kind, digest, onnx_bytes, input_name, output, classes)


def load_sklearn(path: Path) -> Any:
    try:
        import joblib
    except ImportError:
        raise MissingDependencyError("packaging a scikit-learn model", "package") from None
    try:
        model = joblib.load(path)
    except Exception as exc:  # joblib raises whatever unpickling raises
        raise UsageError(f"{path}: cannot load with joblib: {exc}") from None
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise UsageError(
            f"{path}: a {type(model).__name__}; a package needs a fitted classifier with "
            "predict_proba and classes_"
        )
    return model


def load_torch(path: Path) -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("packaging a PyTorch model", "torch") from None
    try:
        jit: Any = torch.jit  # untyped in torch; Any keeps mypy quiet with or without torch
        module = jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError):
        try:
            module = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc:  # unpickling raises anything
            raise UsageError(f"{path}: neither TorchScript nor a pickled module: {exc}") from None
    if not isinstance(module, torch.nn.Module):
        raise UsageError(
            f"{path}: holds a {type(module).__name__}, not a module (a state_dict alone cannot "
            "be run; save the module, or a TorchScript archive)"
        )
    return module.eval()


def _from_sklearn(model: Any, x: NDArray[np.float32]) -> tuple[bytes, str, str, list[Any]]:
    try:
        from skl2onnx import to_onnx
    except ImportError:
        raise MissingDependencyError("exporting a scikit-learn model", "package") from None
    options = {id(m): {"zipmap": False} for m in _classifiers(model)}
    try:
        with warnings.catch_warnings():
            # skl2onnx reads SVC.probA_/probB_, which sklearn 1.9 flags deprecated on each access
            warnings.simplefilter("ignore", FutureWarning)
            opsets = {"": ONNX_OPSET, "ai.onnx.ml": 3}
            onx = to_onnx(model, x[:1], options=options, target_opset=opsets)
    except Exception as exc:  # skl2onnx raises many kinds for unsupported models
        raise UsageError(f"cannot export {type(model).__name__} to ONNX: {exc}") from None
    output = _probability_output([o.name for o in onx.graph.output])
    classes = [_plain(c) for c in model.classes_]
    return onx.SerializeToString(), onx.graph.input[0].name, output, classes


def _classifiers(model: Any) -> list[Any]:
    """The model and, for a pipeline, its last step: both may carry the zipmap option."""
    found = [model]
    while hasattr(model, "steps"):
        model = model.steps[-1][1]
        found.append(model)
    return found


def _from_torch(
    module: Any, x: NDArray[np.float32], y: NDArray[Any]
) -> tuple[bytes, str, str, list[Any]]:
    import torch

    sample = torch.from_numpy(np.ascontiguousarray(x[: min(len(x), 256)]))
    with torch.no_grad():
        out = module(sample)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise UsageError("the PyTorch module must map [N, features] to one [N, classes] tensor")
    classes = list(getattr(module, "classes", None) or _labels(y))
    if out.shape[1] != len(classes):
        raise UsageError(
            f"the module gives {out.shape[1]} outputs but there are {len(classes)} classes"
        )
    probabilities = _is_probability(out.numpy())
    output = "probabilities" if probabilities else "logits"
    with tempfile.TemporaryDirectory(prefix="tierwise-export-") as tmp, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; for the plain feed-forward modules packaged here both give the same graph,
        # and only this one also takes TorchScript archives.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (sample[:1],),
            Path(tmp) / "model.onnx",
            input_names=["input"],
            output_names=[output],
            dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
        import onnx

        graph = onnx.load(str(Path(tmp) / "model.onnx"))
    if not probabilities:
        output = _append_softmax(graph, output)
    return graph.SerializeToString(), "input", output, [_plain(c) for c in classes]


def _from_onnx(
    path: Path, x: NDArray[np.float32], y: NDArray[Any]
) -> tuple[bytes, str, str, list[Any]]:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("packaging an ONNX model", "package") from None
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises its own and protobuf errors
        raise UsageError(f"{path}: not a valid ONNX model: {exc}") from None
    inputs = [
        i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if len(inputs) != 1:
        raise UsageError(f"{path}: expected one input, found {len(inputs)}")
    input_name = inputs[0].name
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    try:
        values = dict(zip(names, session.run(None, {input_name: x[:256]}), strict=True))
    except Exception as exc:  # ORT raises on wrong shapes/types
        raise UsageError(f"{path}: cannot run on the evaluation data: {exc}") from None
    tensors = [n for n in names if isinstance(values[n], np.ndarray) and values[n].ndim == 2]
    candidates = [n for n in tensors if np.issubdtype(values[n].dtype, np.floating)]
    if not candidates:
        raise UsageError(
            f"{path}: no [N, classes] float output (a ZipMap output? export without it)"
        )
    output = _probability_output(candidates)
    meta = {p.key: p.value for p in model.metadata_props}
    classes = json.loads(meta["classes"]) if "classes" in meta else _labels(y)
    if values[output].shape[1] != len(classes):
        raise UsageError(
            f"{path}: output {output} has {values[output].shape[1]} columns, "
            f"but there are {len(classes)} classes"
        )
    if not _is_probability(values[output]):
        output = _append_softmax(model, output)
    return model.SerializeToString(), input_name, output, [_plain(c) for c in classes]


def _append_softmax(model: Any, logits: str) -> str:
    """Add Softmax(axis=1) after a logits output; the probabilities replace it as an output."""
    import onnx
    from onnx import TensorProto, helper

    name = "probabilities" if logits != "probabilities" else "probabilities_softmax"
    model.graph.node.append(helper.make_node("Softmax", [logits], [name], axis=1))
    kept = [o for o in model.graph.output if o.name != logits]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, None]))
    onnx.checker.check_model(model)
    return name


def _probability_output(names: list[str]) -> str:
    for preferred in ("probabilities", "probs", "output_probability"):
        if preferred in names:
            return preferred
    floats = [n for n in names if n != "label"]
    if len(floats) != 1:
        raise UsageError(f"cannot tell which output holds probabilities among {names}")
    return floats[0]


def _is_probability(values: NDArray[Any]) -> bool:
    if (
        values.size == 0
        or values.min() < -PROBABILITY_TOLERANCE
        or values.max() > 1 + PROBABILITY_TOLERANCE
    ):
        return False
    return bool(np.allclose(values.sum(axis=1), 1.0, atol=PROBABILITY_TOLERANCE))


def _labels(y: NDArray[Any]) -> list[Any]:
    return [_plain(c) for c in np.unique(y)]


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones (JSON), keeping ints as ints and text as text."""
    return value.item() if hasattr(value, "item") else value
