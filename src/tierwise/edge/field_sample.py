"""The site's own training data: per served feature, the newest rows a device sent labelled.

A device that knows the truth for a request (an inspection, an operator's correction) sends it
as `labels` (the class index per row, in the package's output order). The agent keeps the
newest `field_rows` such rows per feature in a ring — inputs `x`, label `y`, and `t`, when the
agent got them (Unix seconds) — and writes it to `<data_dir>/field/<feature>.npz` at most every
`SAVE_EVERY_S` and at stop, so a restart keeps it. It is what a federated retraining at this
site learns from (`load_field_sample` reads it from another process). The file is site-local:
the agent never sends it anywhere; where the spec keeps raw data at the site, it stays there.
The file's format is `tierwise.field_file`'s (the federated client at the site reads it).

A request costs a few slice assignments into preallocated arrays (the agent answers thousands
of single-row requests a second); the ring is copied out only when it is written.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tierwise.field_file import (
    FIELD_DIR,
    SUFFIX,
    FieldRows,
    FieldSampleError,
    field_sample_path,
    load_field_sample,
    write_field_sample,
)

__all__ = [
    "DEFAULT_FIELD_ROWS",
    "FIELD_DIR",
    "SAVE_EVERY_S",
    "FieldRing",
    "FieldRows",
    "FieldSample",
    "FieldSampleError",
    "PendingWrite",
    "field_sample_path",
    "load_field_sample",
    "write_field_sample",
]

log = logging.getLogger(__name__)

DEFAULT_FIELD_ROWS = 4096  # per feature: ~1 MB for 64 float32 inputs
SAVE_EVERY_S = 5.0  # an agent's default; its settings' field_save_interval_s
# A feature's name becomes a file name: only the wire's safe names (no '/', no '..').
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class PendingWrite:
    """A copy of one feature's ring, to be written to `path`; `written` is the ring's count
    of rows ever added when the copy was made."""

    feature: str
    path: Path
    rows: FieldRows
    written: int


class FieldRing:
    """The newest `capacity` labelled rows of one feature, in preallocated arrays."""

    def __init__(self, capacity: int, width: int) -> None:
        if capacity < 1 or width < 1:
            raise ValueError(f"a field ring needs capacity and width >= 1 ({capacity}, {width})")
        self.capacity = capacity
        self.width = width
        self._x = np.empty((capacity, width), np.float32)
        self._y = np.empty(capacity, np.int64)
        self._t = np.empty(capacity, np.float64)
        self.written = 0  # rows ever added; the next goes to written % capacity
        self.saved = 0  # `written` when the ring was last written to disk

    def __len__(self) -> int:
        return min(self.written, self.capacity)

    @property
    def dirty(self) -> bool:
        """Rows came since the ring was last written to disk."""
        return self.written != self.saved

    def add(
        self, x: NDArray[np.float32], y: NDArray[np.int64], t: float | NDArray[np.float64]
    ) -> None:
        """Add rows `x` (n, width) with labels `y` (n,), got at `t` (one time for all, or one
        per row); the oldest rows go."""
        n = len(y)
        if n == 0:
            return
        times = None if isinstance(t, float | int) else np.asarray(t)
        if n > self.capacity:  # only the newest can stay
            x, y, n = x[-self.capacity :], y[-self.capacity :], self.capacity
            times = None if times is None else times[-self.capacity :]
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self._x[start : start + first] = x[:first]
        self._y[start : start + first] = y[:first]
        self._t[start : start + first] = t if times is None else times[:first]
        if first < n:  # wraps around
            rest = n - first
            self._x[:rest] = x[first:]
            self._y[:rest] = y[first:]
            self._t[:rest] = t if times is None else times[first:]
        self.written += n

    def rows(self) -> FieldRows:
        """A copy of the rows, oldest first."""
        n = len(self)
        if self.written <= self.capacity:
            return FieldRows(self._x[:n].copy(), self._y[:n].copy(), self._t[:n].copy())
        start = self.written % self.capacity
        order = np.r_[start : self.capacity, 0:start]
        return FieldRows(self._x[order], self._y[order], self._t[order])


class FieldSample:
    """The agent's rings, one per feature that got labelled rows, and their files.

    `add` runs on the request path; `due` hands the changed rings' copies to write (at most
    every `every_s`, or at once when the agent stops); `load` restores them at start.
    """

    def __init__(self, directory: Path, capacity: int, every_s: float = SAVE_EVERY_S) -> None:
        self.directory = directory
        self.capacity = capacity
        self.every_s = every_s
        self.rings: dict[str, FieldRing] = {}
        self._last_save: float | None = None

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def path(self, feature: str) -> Path:
        return self.directory / f"{feature}{SUFFIX}"

    def add(
        self,
        feature: str,
        x: NDArray[np.float32],
        y: NDArray[np.int64],
        t: float,
        classes: int,
    ) -> None:
        """Keep a request's labelled rows; labels outside [0, classes) are no class of the
        model (a device's mistake) and are left out rather than teach a retraining nonsense."""
        if not self.enabled or len(y) == 0:
            return
        if not _all_in_range(y, classes):
            valid = (y >= 0) & (y < classes)
            x, y = x[valid], y[valid]
        ring = self.rings.get(feature)
        if ring is None or ring.width != x.shape[1]:
            if not _SAFE_NAME.match(feature):
                return  # not a name a file may have (the API refuses such names anyway)
            if ring is not None:
                log.warning(
                    "field sample %s: inputs are now %d wide, not %d: the %d rows kept start over",
                    feature, x.shape[1], ring.width, len(ring),
                )  # fmt: skip
            ring = self.rings[feature] = FieldRing(self.capacity, x.shape[1])
        ring.add(x, y, t)

    def counts(self) -> dict[str, int]:
        """Rows kept per feature."""
        return {feature: len(ring) for feature, ring in self.rings.items()}

    def due(self, now: float, final: bool = False) -> list[PendingWrite]:
        """The changed rings (a copy each) to write now: at most every `every_s`, or all that
        changed when `final`. A ring counts as written once `saved` says so: one whose write
        failed (or was never confirmed: a stop cancelled it) is written again next time."""
        if not self.enabled:
            return []
        if not final and self._last_save is not None and now - self._last_save < self.every_s:
            return []
        self._last_save = now
        return [
            PendingWrite(feature, self.path(feature), ring.rows(), ring.written)
            for feature, ring in self.rings.items()
            if ring.dirty
        ]

    def saved(self, write: PendingWrite) -> None:
        """`write` is on disk: its ring is clean unless rows came since its copy was made."""
        ring = self.rings.get(write.feature)
        if ring is not None:
            ring.saved = max(ring.saved, write.written)

    def load(self) -> None:
        """Restore every feature's file (the newest `capacity` rows of it). A file that cannot
        be read is renamed `*.npz.bad` and logged, not served from: the agent still starts."""
        if not self.enabled or not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            feature = path.name[: -len(SUFFIX)]
            if not _SAFE_NAME.match(feature):
                continue
            try:
                rows = load_field_sample(path)
            except FieldSampleError as exc:
                bad = path.with_name(path.name + ".bad")
                log.warning("%s; kept aside as %s, starting an empty sample", exc, bad.name)
                os.replace(path, bad)
                continue
            if len(rows) == 0:
                continue
            ring = FieldRing(self.capacity, rows.x.shape[1])
            ring.add(rows.x, rows.y, rows.t)
            ring.saved = ring.written  # it is what the file holds
            self.rings[feature] = ring
            log.info("field sample %s: %d labelled rows restored from %s", feature, len(ring), path)


def _all_in_range(y: NDArray[np.int64], classes: int) -> bool:
    """0 <= every label < classes. A request has a row or a few: Python's min and max over
    them cost a tenth of numpy's per-call overhead (~2 us, as much as the rest of `add`)."""
    if len(y) <= 64:
        labels: list[int] = y.tolist()
        return min(labels) >= 0 and max(labels) < classes
    return int(y.min()) >= 0 and int(y.max()) < classes
