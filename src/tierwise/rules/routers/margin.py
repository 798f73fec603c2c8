"""Margin: the top class probability minus the runner-up's.

A row torn between two classes (0.48 / 0.47) scores low even when its top probability is
not the lowest around; a row whose leftover mass is spread thin over many classes does not.
"""

from __future__ import annotations

import numpy as np

from tierwise.rules._types import FloatArray, Inputs, Probabilities


class Margin:
    name = "margin"

    def score(self, probabilities: Probabilities, inputs: Inputs | None) -> FloatArray:
        p = np.asarray(probabilities, dtype=np.float64)
        top_two = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        return np.clip(top_two[:, 1] - top_two[:, 0], 0.0, 1.0)
