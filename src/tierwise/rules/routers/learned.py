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
    """[N, classes] -> [N, 4 + 2 * classes] float32: what the learned router sees.

    Columns: the top probability, the runner-up, their margin, the normalized entropy, then
    the probabilities and their logs.
    """
    # The agent runs this on every request of a learned cascade, one row at a time, where a
    # numpy call costs far more than its arithmetic on a row, and a call through a Python
    # wrapper (np.clip, np.partition, ndarray.sum) more again: so each log is taken once (the
    # entropy reuses them), in place, every block is written straight into the result, and
    # only ufuncs and C methods are called. The features are bit for bit those of the plain
    # formulas (clip, log, partition, hstack), so the curves fitted with them still hold.
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
        self.model = model  # router features -> P(edge answer is right), one per row

    def score(self, probabilities: Probabilities) -> FloatArray:
        right = np.asarray(self.model(router_features(probabilities)), dtype=np.float64)
        # Clipped to [0, 1] by the ufuncs themselves: np.clip's Python wrappers cost more.
        score: FloatArray = np.minimum(np.maximum(right.reshape(-1), 0.0), 1.0)
        return score
