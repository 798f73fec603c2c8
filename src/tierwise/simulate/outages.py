"""Links that go down: an alternating up/down process, plus outages the spec schedules.

A link with availability A and mean outage m is up for exponential times of mean
m·A/(1-A) and down for exponential times of mean m, so the long-run share of time down is
1-A. The process starts in its stationary state (down with probability 1-A; both
durations are memoryless, so no residual-time correction is needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from tierwise.rules._types import BoolArray, FloatArray


@dataclass(frozen=True)
class Outages:
    """Disjoint, sorted down intervals [starts[i], ends[i]) of one link."""

    starts: FloatArray
    ends: FloatArray

    @staticmethod
    def never() -> Outages:
        return Outages(np.zeros(0), np.zeros(0))

    def down(self, t: ArrayLike) -> BoolArray:
        """Whether the link is down at each instant of `t`."""
        t = np.asarray(t, dtype=np.float64)
        if len(self.starts) == 0:
            return np.zeros(np.shape(t), dtype=bool)
        i = np.searchsorted(self.starts, t, side="right") - 1
        return (i >= 0) & (t < self.ends[np.maximum(i, 0)])

    def downtime_until(self, t: ArrayLike) -> FloatArray:
        """Seconds down in [0, t) for each t: cumulative, so any window's share is a difference."""
        t = np.asarray(t, dtype=np.float64)
        if len(self.starts) == 0:
            return np.zeros(np.shape(t))
        lengths = self.ends - self.starts
        before = np.concatenate([[0.0], np.cumsum(lengths)])
        i = np.searchsorted(self.starts, t, side="right")  # outages started by t
        partial = np.where(
            i > 0, np.minimum(t, self.ends[np.maximum(i - 1, 0)]) - self.starts[i - 1], 0.0
        )
        return before[np.maximum(i - 1, 0)] * (i > 0) + np.maximum(partial, 0.0)

    def down_in(self, t0: float, t1: float) -> float:
        """Seconds down between t0 and t1."""
        d = self.downtime_until(np.array([t0, t1]))
        return float(d[1] - d[0])

    def union(self, other: Outages) -> Outages:
        """Down whenever either is down."""
        return merge(
            np.concatenate([self.starts, other.starts]), np.concatenate([self.ends, other.ends])
        )


@dataclass(frozen=True)
class SiteOutages:
    """The down intervals of each site's WAN and LAN over the run."""

    wan: list[Outages]
    lan: list[Outages]


def merge(starts: FloatArray, ends: FloatArray) -> Outages:
    """Sorted, disjoint intervals covering the same instants as the given ones."""
    if len(starts) == 0:
        return Outages.never()
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.concatenate([[True], s[1:] > reach[:-1]])
    group = np.cumsum(new) - 1
    out_s = s[new]
    out_e = np.zeros(len(out_s))
    np.maximum.at(out_e, group, e)
    return Outages(out_s, out_e)


def alternating(
    availability: float, mean_outage: float, duration: float, rng: np.random.Generator
) -> Outages:
    """Random outages over [0, duration) of a link up `availability` of the time."""
    if availability >= 1.0 or mean_outage <= 0 or duration <= 0:
        return Outages.never()
    mean_up = mean_outage * availability / (1 - availability)
    cycle = mean_up + mean_outage
    n = int(duration / cycle * 1.2 + 6 * np.sqrt(duration / cycle) + 8)
    starts_down = rng.random() < 1 - availability
    while True:
        ups = rng.exponential(mean_up, n)
        downs = rng.exponential(mean_outage, n)
        if starts_down:
            ups[0] = 0.0
        ends = np.cumsum(ups + downs)
        if ends[-1] >= duration:
            break
        n *= 2
    begins = ends - downs
    keep = begins < duration
    return Outages(begins[keep], np.minimum(ends[keep], duration))
