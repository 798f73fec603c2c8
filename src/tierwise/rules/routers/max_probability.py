"""Max-probability: the edge is as sure as its top class probability (the classic cascade rule)."""

from __future__ import annotations

import numpy as np

from tierwise.rules._types import FloatArray, Inputs, Probabilities


class MaxProbability:
    name = "max_probability"

    def score(self, probabilities: Probabilities, inputs: Inputs | None) -> FloatArray:
        top: FloatArray = np.asarray(probabilities, dtype=np.float64).max(axis=1)
        return top
