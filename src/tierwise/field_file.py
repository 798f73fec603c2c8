"""The field sample's file: the contract between the edge agent that writes it and the
federated client at the same site that reads it (like `wire.py` for HTTP, it belongs to
neither side).

`<agent data dir>/field/<feature>.npz` (`numpy.savez`, uncompressed, no pickles), rows oldest
first:
  x  float32 [n, features]   the inputs as the model got them
  y  int64   [n]             the device's label, 0 <= y < the model's outputs
  t  float64 [n]             the agent's wall clock when the request came (Unix s)
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import TierwiseError

FIELD_DIR = "field"
SUFFIX = ".npz"
_DTYPES = {"x": np.dtype(np.float32), "y": np.dtype(np.int64), "t": np.dtype(np.float64)}


class FieldSampleError(TierwiseError):
    """A field sample file that cannot be read as one: says which file and which field."""


@dataclass(frozen=True)
class FieldRows:
    """Labelled rows, oldest first: inputs, class index, Unix time the agent got them."""

    x: NDArray[np.float32]
    y: NDArray[np.int64]
    t: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.y)


def write_field_sample(path: Path, rows: FieldRows, fsync: bool = False) -> None:
    """Write `rows` to `path` atomically: a reader (another process) sees the old file or the
    new one, never half of one. `fsync` also survives a power loss."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
        np.savez(f, x=rows.x, y=rows.y, t=rows.t)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def load_field_sample(path: Path | str) -> FieldRows:
    """The rows of a field sample file, checked: keys, dtypes, shapes, finite values, labels.
    Raises `FieldSampleError` naming the file and the field that is wrong."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = sorted(set(_DTYPES) - set(npz.files))
            if missing:
                raise FieldSampleError(
                    f"field sample {path}: no {', '.join(missing)} (keys: {sorted(npz.files)})"
                )
            arrays: dict[str, Any] = {key: npz[key] for key in _DTYPES}
    except FieldSampleError:
        raise
    except FileNotFoundError:
        raise FieldSampleError(f"field sample {path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FieldSampleError(f"field sample {path}: not a readable .npz file ({exc})") from None
    for key, dtype in _DTYPES.items():
        if arrays[key].dtype != dtype:
            raise FieldSampleError(
                f"field sample {path}: {key} is {arrays[key].dtype}, expected {dtype}"
            )
    x, y, t = arrays["x"], arrays["y"], arrays["t"]
    if x.ndim != 2 or x.shape[1] < 1:
        raise FieldSampleError(
            f"field sample {path}: x has shape {x.shape}, expected [n, features]"
        )
    if y.shape != (len(x),) or t.shape != (len(x),):
        raise FieldSampleError(
            f"field sample {path}: y {y.shape} and t {t.shape} must both be ({len(x)},) as x has"
            f" {len(x)} rows"
        )
    if not np.isfinite(x).all():
        raise FieldSampleError(f"field sample {path}: x holds non-finite values")
    if not np.isfinite(t).all():
        raise FieldSampleError(f"field sample {path}: t holds non-finite times")
    if len(y) and int(y.min()) < 0:
        raise FieldSampleError(f"field sample {path}: y holds a negative class index")
    return FieldRows(x, y, t)


def field_sample_path(data_dir: Path, feature: str) -> Path:
    """Where an agent with this data directory keeps `feature`'s sample."""
    return data_dir / FIELD_DIR / f"{feature}{SUFFIX}"
