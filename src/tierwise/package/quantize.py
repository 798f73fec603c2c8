"""INT8 from fp32 with onnxruntime.quantization: static where it applies, dynamic otherwise.

- Static (QDQ, uint8 activations, int8 weights, min-max calibration): for feed-forward graphs
  (MatMul, Gemm, Conv) when calibration inputs exist. Activation ranges are fixed from real
  inputs, so ORT can run whole int8 kernels (VNNI on x86, dot-product on ARM). The final
  softmax and what follows it stay float, so confidences keep their resolution.
- Dynamic (int8 weights, activation ranges per call): for recurrent or attention graphs,
  whose activation ranges vary too much to fix, and when there are no calibration inputs.
- Nothing to quantize (tree ensembles, SVMs, ...): no INT8 variant, and the reason says why.

Build side: imports onnx and onnxruntime.quantization inside functions.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

STATIC_OPS = frozenset({"MatMul", "Gemm", "Conv"})
DYNAMIC_OPS = frozenset({"LSTM", "GRU", "RNN", "Attention", "MultiHeadAttention"})
SOFTMAX_OPS = frozenset({"Softmax", "LogSoftmax", "Sigmoid"})
CALIBRATION_BATCH = 64
MAX_CALIBRATION_SAMPLES = 1024


@dataclass(frozen=True)
class Quantized:
    mode: Literal["static", "dynamic"]
    onnx: bytes
    calibration_samples: int


def plan_quantization(fp32: bytes, has_calibration: bool) -> Literal["static", "dynamic"] | str:
    """'static' or 'dynamic', or a sentence saying why this graph cannot be quantized."""
    import onnx

    ops = {node.op_type for node in onnx.load_from_string(fp32).graph.node}
    if ops & DYNAMIC_OPS:
        return "dynamic"
    if ops & STATIC_OPS:
        return "static" if has_calibration else "dynamic"
    found = ", ".join(sorted(ops - {"Cast", "Identity", "Reshape"})) or "no operators"
    return f"no operator ONNX Runtime quantizes (it has {found})"


def quantize(
    fp32: bytes, input_name: str, calibration: NDArray[np.float32] | None
) -> Quantized | str:
    """The INT8 model, or the reason there is none."""
    plan = plan_quantization(fp32, calibration is not None and len(calibration) > 0)
    if plan not in ("static", "dynamic"):
        return plan
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    with tempfile.TemporaryDirectory(prefix="tierwise-quant-") as tmp, _quiet_advice():
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        if plan == "static":
            assert calibration is not None
            samples = calibration[:MAX_CALIBRATION_SAMPLES]
            quantize_static(
                src,
                dst,
                _Batches(input_name, samples),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                # per-tensor: accurate enough here (see the report); per-channel breaks on Gemm+bias
                per_channel=False,
                nodes_to_exclude=_after_softmax(fp32),
            )
            return Quantized("static", dst.read_bytes(), len(samples))
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        return Quantized("dynamic", dst.read_bytes(), 0)


def _after_softmax(fp32: bytes) -> list[str]:
    """Names of the Softmax nodes and every node downstream of them.

    These stay float: an 8-bit softmax leaves ~50 distinct confidences on digits, and
    confidence is what the cascade's threshold cuts on. (Excluding Softmax alone is not
    enough: ORT then quantizes the probabilities as the input of a following ArgMax.)
    Accuracy and speed are the same either way (measured on digits).
    """
    import onnx

    graph = onnx.load_from_string(fp32).graph
    tainted: set[str] = set()
    names: list[str] = []
    for node in graph.node:  # ONNX nodes are stored in topological order
        if node.op_type in SOFTMAX_OPS or tainted.intersection(node.input):
            tainted.update(node.output)
            if node.name:
                names.append(node.name)
    return names


class _Batches:
    """onnxruntime's CalibrationDataReader protocol: feed dicts until None."""

    def __init__(self, input_name: str, x: NDArray[np.float32]) -> None:
        self._feeds: Iterator[dict[str, Any]] = iter(
            {input_name: np.ascontiguousarray(x[i : i + CALIBRATION_BATCH], dtype=np.float32)}
            for i in range(0, len(x), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quiet_advice() -> Iterator[None]:
    """ORT logs advice to pre-process on the root logger every time; it is not for our users."""
    root = logging.getLogger()
    drop = _DropAdvice()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
