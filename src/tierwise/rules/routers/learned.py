"""Learned deferral: a small model predicting "the edge answer is right" from the edge's outputs.

Max-probability treats every class alike; the edge model is not alike on every class (a
digits network that says "1" at 0.93 is wrong more often than one that says "0" at 0.93).
A logistic regression over `router_features` — the sorted top two, margin, normalized
entropy, and the whole probability vector with its logs — learns that from held-out edge
outputs with their labels (package/routers.py trains it and exports it to ONNX). Its
probability of "right" is the score.

The model itself is any callable from class probabilities to that probability; at the edge
it is an ONNX Runtime session over the package's signed router file (package/runtime.py),
one graph that computes these same features and then the regression, so a request pays one
ONNX Runtime call and no numpy features. `router_features` is what training fits on, and what
the graph's feature nodes are tested against.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tierwise.rules._types import FloatArray, Inputs, Probabilities

TINY = 1e-9


def router_features(probabilities: Probabilities) -> NDArray[np.float32]:
    """[N, classes] -> [N, 4 + 2 * classes] float32: what the learned router sees.

    Columns: the top probability, the runner-up, their margin, the normalized entropy, then
    the probabilities and their logs.
    """
    # Each log is taken once (the entropy reuses them), in place, and every block is written
    # straight into the result: bit for bit the plain formulas (clip, log, partition, hstack).
    # The edge no longer runs this (the router graph computes the features itself, in
    # float32); package/routers.py fits on it, tests/package/test_routers.py checks the graph.
    p = np.asarray(probabilities, dtype=np.float64)
    rows, classes = p.shape
    logs = np.maximum(p, TINY)  # clipped to [TINY, 1]: keeps log away from -inf
    np.minimum(logs, 1.0, out=logs)
    np.log(logs, out=logs)
    ordered = p.copy()
    ordered.partition(classes - 2, axis=1)  # the top two last
    top, second = ordered[:, -1], ordered[:, -2]
    features = np.empty((rows, 4 + 2 * classes), dtype=np.float32)
    features[:, 0] = top
    features[:, 1] = second
    features[:, 2] = top - second
    features[:, 3] = -np.add.reduce(p * logs, axis=1) / np.log(classes)
    features[:, 4 : 4 + classes] = p
    features[:, 4 + classes :] = logs
    return features


class Learned:
    name = "learned"

    def __init__(self, model: Callable[[NDArray[np.float32]], FloatArray]) -> None:
        self.model = model  # class probabilities -> P(edge answer is right), one per row

    def score(self, probabilities: Probabilities, inputs: Inputs | None) -> FloatArray:
        p = np.asarray(probabilities, dtype=np.float32)  # what an ONNX session takes
        right = np.asarray(self.model(p), dtype=np.float64)
        # Clipped to [0, 1] by the ufuncs themselves: np.clip's Python wrappers cost more.
        score: FloatArray = np.minimum(np.maximum(right.reshape(-1), 0.0), 1.0)
        return score
