"""Prototypes: is the input near training rows of the class the edge model answered?

Every other rule reads only the edge model's own probabilities, and stops near 3x the oracle
escalation rate on digits: the last errors to catch are ones the edge model makes sure of
(benchmarks/router.py). The input itself says more. Per class, k-means prototypes of the
labelled training inputs (standardized per feature); for a row x, d_c is the squared distance
to the nearest prototype of class c, and q = softmax_c(-(d_c - min d) / tau) says how much
the neighbourhood of x agrees with each class, tau being the median nearest-prototype
distance of the training rows (the scale of "near"). The score is the top probability times
q of the class the edge answered: a sure answer in a region of another class scores low.

`Prototypes` wraps whatever computes that — at the edge an ONNX Runtime session over the
package's signed prototype file (package/prototypes.py exports one graph doing all of the
above, tested against `prototype_scores`, the numpy reference below).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.rules._types import FloatArray, Inputs, Probabilities

ScoreModel = Callable[[NDArray[np.float32], NDArray[np.float32]], NDArray[Any]]


@dataclass(frozen=True)
class PrototypeSet:
    """What the rule learned: per class K prototypes in standardized input space."""

    centres: NDArray[np.float32]  # [classes, K, features], standardized; a short class repeats
    mean: NDArray[np.float32]  # [features]: standardize as (x - mean) / scale
    scale: NDArray[np.float32]  # [features], floored (a constant pixel does not divide by 0)
    tau: float  # softmax temperature: median nearest-prototype squared distance of training rows


def class_distances(prototypes: PrototypeSet, inputs: Inputs) -> FloatArray:
    """[N, features] -> [N, classes]: squared distance to the nearest prototype of each class."""
    z = (np.asarray(inputs, dtype=np.float64) - prototypes.mean) / prototypes.scale
    classes, k, features = prototypes.centres.shape
    flat = prototypes.centres.reshape(classes * k, features).astype(np.float64)
    # |z - c|^2 expanded as the graph computes it (one MatMul), floored at 0 against rounding.
    d = (z * z).sum(axis=1, keepdims=True) - 2.0 * z @ flat.T + (flat * flat).sum(axis=1)
    nearest: FloatArray = np.maximum(d, 0.0).reshape(len(z), classes, k).min(axis=2)
    return nearest


def prototype_scores(
    prototypes: PrototypeSet, probabilities: Probabilities, inputs: Inputs
) -> FloatArray:
    """The rule's score: top probability x the neighbourhood's agreement with the top class."""
    p = np.asarray(probabilities, dtype=np.float64)
    d = class_distances(prototypes, inputs)
    logits = -(d - d.min(axis=1, keepdims=True)) / prototypes.tau
    q = np.exp(logits)
    q /= q.sum(axis=1, keepdims=True)
    top = p.argmax(axis=1)
    rows = np.arange(len(p))
    score: FloatArray = np.clip(p[rows, top] * q[rows, top], 0.0, 1.0)
    return score


class Prototypes:
    name = "prototypes"

    def __init__(self, model: ScoreModel) -> None:
        self.model = model  # (probabilities, inputs) -> score per row, as prototype_scores

    @classmethod
    def reference(cls, prototypes: PrototypeSet) -> Prototypes:
        """The rule computed in numpy (the build's cross-fitting, and the tests' yardstick)."""
        return cls(lambda p, x: prototype_scores(prototypes, p, x))

    def score(self, probabilities: Probabilities, inputs: Inputs | None) -> FloatArray:
        if inputs is None:
            raise ValueError("the prototypes rule scores the input rows; none were given")
        p = np.asarray(probabilities, dtype=np.float32)  # what an ONNX session takes
        x = np.asarray(inputs, dtype=np.float32)
        if len(x) != len(p):
            raise ValueError(f"{len(p)} rows of probabilities but {len(x)} input rows")
        out = np.asarray(self.model(p, x), dtype=np.float64).reshape(-1)
        # Clipped to [0, 1] by the ufuncs themselves, in place: a product of a probability and
        # a softmax entry is there already, up to rounding; np.clip's wrappers cost more.
        np.minimum(np.maximum(out, 0.0, out=out), 1.0, out=out)
        return out
