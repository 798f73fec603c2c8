"""Evaluation data for a package build, and the .npz file that holds it.

An .npz holds

    x               float array [N, features]   evaluation inputs (never seen in training)
    y               array [N]                   their labels (ints or strings)
    x_calibration   float array [M, features]   optional: inputs for static INT8 calibration,
                                                typically a sample of the training inputs

Without `x_calibration` the evaluation inputs calibrate the quantizer too (no labels are
used for that, but the accuracy figure is then slightly optimistic; the manifest says so
through `build.calibration_samples` and `build.eval_data`).

A scenario's held-out split is EvalData too (`Scenario.eval_data`); `tierwise package --data
NAME` resolves the name to it, so this module knows nothing of scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import UsageError


@dataclass(frozen=True)
class EvalData:
    x: NDArray[np.float32]
    y: NDArray[Any]
    x_calibration: NDArray[np.float32] | None
    source: str  # "scenario:digits" or the file's name, for the manifest


def load_eval_data(ref: str | Path) -> EvalData:
    """Read evaluation data from an .npz file, checking its arrays' shapes and types."""
    path = Path(ref)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{ref}: cannot read evaluation data (.npz with x and y): {exc}") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise UsageError(f"{ref}: missing array '{key}' (found: {', '.join(sorted(arrays))})")
    x = _features(arrays["x"], f"{ref}: x")
    y = np.asarray(arrays["y"])
    if y.ndim != 1 or len(y) != len(x):
        raise UsageError(f"{ref}: y must be one label per row of x ({len(x)}), got {list(y.shape)}")
    calibration = arrays.get("x_calibration")
    x_cal = None if calibration is None else _features(calibration, f"{ref}: x_calibration")
    if x_cal is not None and x_cal.shape[1] != x.shape[1]:
        raise UsageError(f"{ref}: x_calibration has {x_cal.shape[1]} features, x has {x.shape[1]}")
    return EvalData(x, y, x_cal, path.name)


def save_eval_data(path: str | Path, data: EvalData) -> None:
    arrays: dict[str, NDArray[Any]] = {"x": data.x, "y": data.y}
    if data.x_calibration is not None:
        arrays["x_calibration"] = data.x_calibration
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def _features(values: NDArray[Any], where: str) -> NDArray[np.float32]:
    if values.ndim != 2 or len(values) == 0:
        raise UsageError(
            f"{where} must be a non-empty [N, features] array, got {list(values.shape)}"
        )
    if not np.issubdtype(values.dtype, np.number):
        raise UsageError(f"{where} must be numeric, got {values.dtype}")
    x = np.ascontiguousarray(values, dtype=np.float32)
    if not np.isfinite(x).all():
        raise UsageError(f"{where} contains NaN or infinity")
    return x
