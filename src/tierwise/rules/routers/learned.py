"""Learned deferral: a small model predicting "the edge answer is right" from the edge's outputs.

Max-probability treats every class alike; the edge model is not alike on every class (a
digits network that says "1" at 0.93 is wrong more often than one that says "0" at 0.93).
A logistic regression over `router_features` — the sorted top two, margin, normalized
entropy, and the whole probability vector with its logs — learns that from held-out edge
outputs with their labels (package/routers.py trains it and exports it to ONNX). Its
probability of "right" is the score.

The model itself is any callable from features to that probability; at the edge it is an
ONNX Runtime session over the package's signed router file (package/runtime.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tierwise.rules._types import FloatArray, Probabilities

TINY = 1e-9


def router_features(probabilities: Probabilities) -> NDArray[np.float32]:
    """[N, classes] -> [N, 4 + 2 * classes] float32: what the learned router sees."""
    p = np.asarray(probabilities, dtype=np.float64)
    top_two = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    entropy = -(p * np.log(np.clip(p, TINY, 1.0))).sum(axis=1) / np.log(p.shape[1])
    logs = np.log(np.clip(p, TINY, 1.0))
    columns = [top_two[:, 1:], top_two[:, :1], top_two[:, 1:] - top_two[:, :1], entropy[:, None]]
    return np.ascontiguousarray(np.hstack([*columns, p, logs]), dtype=np.float32)


class Learned:
    name = "learned"

    def __init__(self, model: Callable[[NDArray[np.float32]], FloatArray]) -> None:
        self.model = model  # router features -> P(edge answer is right), one per row

    def score(self, probabilities: Probabilities) -> FloatArray:
        right = np.asarray(self.model(router_features(probabilities)), dtype=np.float64)
        return np.clip(right.reshape(-1), 0.0, 1.0)
