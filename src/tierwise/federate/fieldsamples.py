"""A site's field samples — the rows its edge agent kept — as the data of a federated fine-tune.

The agent keeps, per feature, an `.npz` in `tierwise.field_file`'s format: `x` (float32
[n, features]), `y` (int64: the index of the row's class in the model's classes) and `t`
(float64: wall-clock seconds when the row was seen). Only that site's ClientApp opens it
(`field_shard`); the cloud side learns its row counts and what the model does on it, never
a row.

Each site splits its own rows into training and held-out parts, with a seed it is given, so
every site and every run of the same job splits the same way; `since` keeps only the rows
seen from that moment on (e.g. after a drift verdict), so the model learns the field as it is.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from tierwise.federate.sitedata import Shard
from tierwise.field_file import FieldSampleError, load_field_sample

HELD_OUT_FRACTION = 0.3
MIN_ROWS = 10  # fewer cannot fill a training part and a held-out part


def field_shard(
    path: Path,
    site: str,
    *,
    since: float | None = None,
    seed: int = 0,
    held_out: float = HELD_OUT_FRACTION,
) -> Shard:
    """This site's field rows (those with t >= since), split into training and held-out parts."""
    rows = load_field_sample(path)
    x, y, t = rows.x, rows.y, rows.t
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
