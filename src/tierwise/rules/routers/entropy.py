"""Entropy: one minus the entropy of the class probabilities, normalized by its maximum log(C).

Uses the whole distribution, not just its top: 1.0 for a one-hot answer, 0.0 for a uniform one.
"""

from __future__ import annotations

import numpy as np

from tierwise.rules._types import FloatArray, Inputs, Probabilities

TINY = 1e-12  # 0 * log 0 is 0; the clip only keeps log away from -inf


class Entropy:
    name = "entropy"

    def score(self, probabilities: Probabilities, inputs: Inputs | None) -> FloatArray:
        p = np.asarray(probabilities, dtype=np.float64)
        h = -(p * np.log(np.clip(p, TINY, 1.0))).sum(axis=1)
        score: FloatArray = np.clip(1.0 - h / np.log(p.shape[1]), 0.0, 1.0)
        return score
