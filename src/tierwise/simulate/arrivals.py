"""Request arrivals: Poisson at each feature's rate, shaped by the daily pattern and spikes.

A non-homogeneous Poisson process is a unit-rate one on a stretched time axis: with
Λ(t) = ∫ rate, the arrival times are Λ⁻¹ of unit-rate points. The rate multiplier here is
piecewise constant (daily slots, spike edges), so Λ is piecewise linear and Λ⁻¹ is one
`np.interp`. Unit-rate points are cumulative sums of exponentials: no sort anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from tierwise.rules._types import FloatArray
from tierwise.spec.traffic import Traffic

DAY = 86400.0


@dataclass(frozen=True)
class RateProfile:
    """A piecewise-constant multiplier: value `levels[i]` on [edges[i], edges[i+1])."""

    edges: FloatArray  # sorted, starting at 0, ending at the simulated duration
    levels: FloatArray

    def cumulative(self, t: FloatArray | float) -> FloatArray:
        """Λ(t) for a unit base rate: integral of the multiplier from 0 to t."""
        cum = np.concatenate([[0.0], np.cumsum(np.diff(self.edges) * self.levels)])
        return np.asarray(np.interp(t, self.edges, cum), dtype=np.float64)

    def at(self, t: ArrayLike) -> FloatArray:
        i = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.levels) - 1)
        return self.levels[i]

    def mean(self) -> float:
        span = self.edges[-1] - self.edges[0]
        return float(self.cumulative(self.edges[-1]) / span) if span > 0 else 1.0


def rate_profile(traffic: Traffic | None, duration: float, feature: str, site: str) -> RateProfile:
    """The multiplier a feature sees at a site over [0, duration): daily pattern × spikes."""
    edges = [0.0, duration]
    daily: list[float] = []
    if traffic is not None and traffic.daily:
        mean = sum(traffic.daily) / len(traffic.daily)
        daily = [x / mean for x in traffic.daily]
        slot = DAY / len(daily)
        edges += list(np.arange(slot, duration, slot))
    spikes = []
    if traffic is not None:
        for spike in traffic.spikes:
            if spike.features is not None and feature not in spike.features:
                continue
            if spike.sites is not None and site not in spike.sites:
                continue
            spikes.append(spike)
            edges += [spike.start, spike.start + spike.duration]
    grid = np.unique(np.clip(np.asarray(edges), 0.0, duration))
    mids = (grid[:-1] + grid[1:]) / 2
    levels = np.ones(len(mids))
    if daily:
        slot_index = ((mids % DAY) // (DAY / len(daily))).astype(np.int64)
        levels *= np.asarray(daily)[np.minimum(slot_index, len(daily) - 1)]
    for spike in spikes:
        inside = (mids >= spike.start) & (mids < spike.start + spike.duration)
        levels[inside] *= spike.factor
    return RateProfile(grid, levels)


def poisson_times(
    rate: float,
    profile: RateProfile,
    t0: float,
    t1: float,
    rng: np.random.Generator,
    rows: int = 1,
) -> FloatArray:
    """Arrival times in [t0, t1) of `rows` independent streams of base `rate` (events/s).

    Returns a (rows, k) array, each row sorted, padded with +inf after its last arrival.
    """
    lo, hi = profile.cumulative(t0), profile.cumulative(t1)
    expected = float(rate * (hi - lo))
    if expected <= 0:
        return np.full((rows, 0), np.inf)
    k = int(expected + 6 * np.sqrt(expected) + 4)
    while True:
        gaps = rng.standard_exponential((rows, k), dtype=np.float32)  # summed in float64
        points = np.cumsum(gaps, axis=1, dtype=np.float64)
        points /= rate
        if np.all(points[:, -1] >= hi - lo):
            break
        k *= 2  # a rare row ran past the margin: draw again, larger
    points += lo
    inside = points < hi
    last = int(inside.sum(axis=1).max())
    points = points[:, :last]
    flat = profile.levels.min() == profile.levels.max()
    if flat:
        times: FloatArray = t0 + (points - lo) / profile.levels[0]
    else:
        cum = profile.cumulative(profile.edges)
        times = np.interp(points, cum, profile.edges)
    times[~inside[:, :last]] = np.inf
    return times
