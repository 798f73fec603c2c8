"""Measure model variants with ONNX Runtime: accuracy on evaluation data, and time per call.

Latency is taken the way a gateway worker runs: one intra-op thread, one call at a time, the
same input rows every time, after a warm-up. Variants are timed interleaved (round-robin,
starting variant rotating every round), so background load on the machine hits them alike
and the ratio between them stays fair even when the absolute numbers move.

Edge-friendly: numpy and onnxruntime only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from tierwise.package.manifest import LatencyStats
from tierwise.package.runtime import session_options

DEFAULT_BATCHES = (1, 32)
DEFAULT_RUNS = 300
WARMUP_RUNS = 20


class Scorer:
    """An fp32 or INT8 graph in one ORT session: probabilities for a batch."""

    def __init__(self, onnx: bytes, input_name: str, output: str, threads: int = 1) -> None:
        self.session = ort.InferenceSession(
            onnx, sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.input_name = input_name
        self.output = output

    def probabilities(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        (out,) = self.session.run([self.output], {self.input_name: x})
        return np.asarray(out, dtype=np.float32)

    def call(self, x: NDArray[np.float32]) -> Callable[[], Any]:
        feeds = {self.input_name: x}
        outputs = [self.output]
        return lambda: self.session.run(outputs, feeds)


def accuracy(probabilities: NDArray[np.float32], y: NDArray[Any], classes: Sequence[Any]) -> float:
    predicted = np.asarray(classes)[probabilities.argmax(axis=1)]
    return float(np.mean(predicted == y))


def measure_latency(
    scorers: dict[str, Scorer],
    x: NDArray[np.float32],
    batches: Sequence[int] = DEFAULT_BATCHES,
    runs: int = DEFAULT_RUNS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[LatencyStats]]:
    """Per variant and batch size: p50, p99 and mean milliseconds per call over `runs` calls."""
    out: dict[str, list[LatencyStats]] = {name: [] for name in scorers}
    names = list(scorers)
    for batch in batches:
        if progress is not None:
            progress(f"timing {', '.join(names)} at batch {batch} ({runs} calls each)")
        rows = np.ascontiguousarray(np.resize(x, (batch, x.shape[1])), dtype=np.float32)
        calls = {name: scorers[name].call(rows) for name in names}
        for call in calls.values():
            for _ in range(WARMUP_RUNS):
                call()
        samples: dict[str, list[int]] = {name: [] for name in names}
        for i in range(runs):
            for j in range(len(names)):
                name = names[(i + j) % len(names)]
                start = time.perf_counter_ns()
                calls[name]()
                samples[name].append(time.perf_counter_ns() - start)
        for name in names:
            ms = np.asarray(samples[name], dtype=np.float64) / 1e6
            out[name].append(
                LatencyStats(
                    batch=batch,
                    p50_ms=round(float(np.percentile(ms, 50)), 4),
                    p99_ms=round(float(np.percentile(ms, 99)), 4),
                    mean_ms=round(float(ms.mean()), 4),
                    runs=runs,
                )
            )
    return out
