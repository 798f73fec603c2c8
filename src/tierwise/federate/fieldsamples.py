"""A site's field samples — the rows its edge agent kept — as the data of a federated fine-tune.

The agent keeps, per feature, an `.npz` with `x` (float32 [n, features]), `y` (int64: the
index of the row's class in the model's sorted classes) and `t` (float64: wall-clock seconds
when the row was seen). Only that site's ClientApp opens it (`field_shard`); the cloud side
learns its row counts and what the model does on it, never a row.

Each site splits its own rows into training and held-out parts, with a seed it is given, so
every site and every run of the same job splits the same way; `since` keeps only the rows
seen from that moment on (e.g. after a drift verdict), so the model learns the field as it is.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.federate.sitedata import Shard

HELD_OUT_FRACTION = 0.3
MIN_ROWS = 10  # fewer cannot fill a training part and a held-out part


class FieldSampleError(ValueError):
    """A site's field-sample file is missing, malformed or too small; says which and why."""


def field_shard(
    path: Path,
    site: str,
    *,
    since: float | None = None,
    seed: int = 0,
    held_out: float = HELD_OUT_FRACTION,
) -> Shard:
    """This site's field rows (those with t >= since), split into training and held-out parts."""
    x, y, t = read_field_sample(path)
    if since is not None:
        keep = t >= since
        x, y = x[keep], y[keep]
    if len(y) < MIN_ROWS:
        after = f" seen since t={since:g}" if since is not None else ""
        raise FieldSampleError(
            f"site {site}: {path} holds {len(y)} rows{after}; a fine-tune needs {MIN_ROWS}"
        )
    rng = np.random.default_rng((seed * 1_000_003 + zlib.crc32(site.encode())) % 2**32)
    order = rng.permutation(len(y))
    n_test = max(1, round(len(y) * held_out))
    test, train = order[:n_test], order[n_test:]
    return Shard(site=site, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])


def read_field_sample(
    path: Path,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float64]]:
    """x, y, t from a field-sample file, checked: shapes agree, labels are class indices."""
    try:
        data = np.load(path)
    except FileNotFoundError:
        raise FieldSampleError(f"no field-sample file at {path}") from None
    except (OSError, ValueError) as exc:
        raise FieldSampleError(f"{path} is not a readable .npz: {exc}") from None
    with data:
        missing = [k for k in ("x", "y", "t") if k not in data.files]
        if missing:
            raise FieldSampleError(f"{path} lacks {', '.join(missing)} (has {data.files})")
        x, y, t = data["x"], data["y"], data["t"]
    if x.ndim != 2:
        raise FieldSampleError(f"{path}: x must be [rows, features], has shape {x.shape}")
    if y.shape != (len(x),) or t.shape != (len(x),):
        raise FieldSampleError(
            f"{path}: x has {len(x)} rows but y has shape {y.shape} and t {t.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise FieldSampleError(f"{path}: y must hold class indices (integers >= 0)")
    if not np.isfinite(x).all():
        raise FieldSampleError(f"{path}: x holds NaN or infinite values")
    return x.astype(np.float32), y.astype(np.int64), t.astype(np.float64)


def write_field_sample(path: Path, x: NDArray[Any], y: NDArray[Any], t: NDArray[Any]) -> Path:
    """Store field rows in the format above (what an edge agent keeps; tests write them too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        x=np.asarray(x, np.float32),
        y=np.asarray(y, np.int64),
        t=np.asarray(t, np.float64),
    )
    return path
