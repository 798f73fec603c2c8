"""The value types the rules accept: one float for the agent, an array for the simulator."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Floats = float | FloatArray
Bools = bool | BoolArray
Probabilities = NDArray[np.floating[Any]]  # [N, classes], float32 or float64
Inputs = NDArray[np.floating[Any]]  # [N, features]: the rows the probabilities came from


def scalar_or_array(value: Any, *inputs: Any) -> Any:
    """Hand a plain Python value back when every input was a plain value (the agent's case)."""
    if all(np.ndim(x) == 0 for x in inputs):
        return np.asarray(value).item()
    return value
