"""Temperature-calibrated confidence: the top probability of softmax(log p / T).

One temperature T, fitted on held-out data by minimizing the negative log-likelihood
(Guo et al., "On Calibration of Modern Neural Networks", ICML 2017), makes the score a
calibrated chance that the edge answer is right: an over-confident network gets T > 1. The
rescaled top probability depends on the rest of the row too (p1^(1/T) / sum p_i^(1/T)), so
the order of rows is close to max-probability's but not the same; and its threshold reads
as a probability of being right.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tierwise.rules._types import FloatArray, Inputs, Probabilities

TINY = 1e-12
SEARCH = (0.05, 20.0)  # temperatures searched (log-spaced golden section)


def scaled(probabilities: Probabilities, temperature: float) -> FloatArray:
    """softmax(log p / T), computed stably."""
    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), TINY, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


class Temperature:
    name = "temperature"

    def __init__(self, temperature: float) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)

    def score(self, probabilities: Probabilities, inputs: Inputs | None) -> FloatArray:
        top: FloatArray = scaled(probabilities, self.temperature).max(axis=1)
        return top


def fit_temperature(
    probabilities: FloatArray, true_column: NDArray[np.intp], iterations: int = 60
) -> float:
    """The T minimizing the mean negative log-likelihood of the true classes (1-D, convex in
    log T for softmax outputs: a golden-section search is exact enough and needs no scipy)."""
    rows = np.arange(len(true_column))

    def nll(log_t: float) -> float:
        q = scaled(probabilities, float(np.exp(log_t)))
        return float(-np.log(np.clip(q[rows, true_column], TINY, 1.0)).mean())

    lo, hi = np.log(SEARCH[0]), np.log(SEARCH[1])
    golden = (np.sqrt(5) - 1) / 2
    a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - golden * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + golden * (hi - lo)
            fb = nll(b)
    return round(float(np.exp((lo + hi) / 2)), 6)
