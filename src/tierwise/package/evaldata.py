"""Evaluation data for a package build, and the .npz file that holds it.

An .npz holds

    x               float array [N, features]   evaluation inputs (never seen in training)
    y               array [N]                   their labels (ints or strings)
    x_calibration   float array [M, features]   optional: inputs for static INT8 calibration,
                                                typically a sample of the training inputs
    router_p        float array [K, classes]    optional: the edge model's class probabilities
                                                on rows it did not train on (out-of-fold
                                                predictions), which the escalation rules learn
    router_y        array [K]                   from (package/routers.py), with their labels
    router_x        float array [K, features]   optional, with router_p: the inputs of those
                                                rows (the prototypes rule learns from them)

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
    router_p: NDArray[np.float32] | None = None
    router_y: NDArray[Any] | None = None
    router_x: NDArray[np.float32] | None = None  # the router rows' inputs, aligned with router_p


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
    router_p, router_y = _router_data(arrays, ref)
    router_x = _router_inputs(arrays, ref, x.shape[1], router_p)
    return EvalData(x, y, x_cal, path.name, router_p, router_y, router_x)


def save_eval_data(path: str | Path, data: EvalData) -> None:
    arrays: dict[str, NDArray[Any]] = {"x": data.x, "y": data.y}
    if data.x_calibration is not None:
        arrays["x_calibration"] = data.x_calibration
    if (data.router_p is None) != (data.router_y is None):
        raise UsageError("router data needs both router_p and router_y")
    if data.router_p is not None and data.router_y is not None:
        arrays["router_p"], arrays["router_y"] = data.router_p, data.router_y
    if data.router_x is not None:
        if data.router_p is None or len(data.router_x) != len(data.router_p):
            raise UsageError("router_x needs router_p with one row per input row")
        arrays["router_x"] = data.router_x
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def _router_data(
    arrays: dict[str, NDArray[Any]], ref: str | Path
) -> tuple[NDArray[np.float32] | None, NDArray[Any] | None]:
    p, y = arrays.get("router_p"), arrays.get("router_y")
    if p is None and y is None:
        return None, None
    if p is None or y is None:
        given, missing = ("router_p", "router_y") if y is None else ("router_y", "router_p")
        raise UsageError(f"{ref}: has {given} but not {missing} (the router data needs both)")
    probs = _features(p, f"{ref}: router_p")
    if ((probs < 0) | (probs > 1)).any():
        raise UsageError(f"{ref}: router_p must be class probabilities in [0, 1]")
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(probs):
        raise UsageError(
            f"{ref}: router_y must be one label per row of router_p ({len(probs)}), "
            f"got {list(labels.shape)}"
        )
    return probs, labels


def _router_inputs(
    arrays: dict[str, NDArray[Any]],
    ref: str | Path,
    features: int,
    router_p: NDArray[np.float32] | None,
) -> NDArray[np.float32] | None:
    values = arrays.get("router_x")
    if values is None:
        return None
    if router_p is None:
        raise UsageError(f"{ref}: has router_x but not router_p and router_y (its rows' outputs)")
    router_x = _features(values, f"{ref}: router_x")
    if router_x.shape != (len(router_p), features):
        raise UsageError(
            f"{ref}: router_x must be [{len(router_p)}, {features}] (a row of x's width per "
            f"row of router_p), got {list(router_x.shape)}"
        )
    return router_x


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
