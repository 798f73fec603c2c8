"""When a cascade sends a request to the cloud, and which answer the requester gets.

The cascade answers every request at the edge first. A *hard* request (its confidence below
the threshold the calibration curve gives for the planned escalation share) goes on to the
cloud, but only while the WAN is up and only when the time left before the deadline covers
the cloud round trip as recently observed; otherwise the local answer is returned at once.
An escalation whose answer is not back by the deadline is answered locally at the deadline.

    hard = is_hard(confidence, threshold)
    send = escalate(hard, remaining=deadline - elapsed, round_trip=tracker.estimate(), wan_up=up)
    latency, from_cloud = cascade_answer(local_latency, cloud_latency, deadline, send)

Every function takes floats (the agent) or numpy arrays (the simulator) and answers in kind.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.rules._types import Bools, FloatArray, Floats, scalar_or_array

DEFAULT_QUANTILE = 0.9  # budget for the round trip most escalations see, not the median
DEFAULT_WINDOW = 1024  # round trips remembered: a few minutes of escalations at typical rates


def is_hard(
    confidence: Floats,
    threshold: Floats,
    tie_share: float = 0.0,
    tie_draw: Floats | None = None,
) -> Bools:
    """A request the edge model is unsure of: confidence strictly below the threshold — and,
    of those exactly at it, the share `tie_share` whose `tie_draw` (`tie_draws`) is below it.

    Models whose scores take few values (a shallow tree: one per leaf) put whole groups of
    rows at one score; breaking those ties lets a threshold spend a budget exactly.
    """
    below = np.less(confidence, threshold)
    if tie_share > 0 and tie_draw is not None:
        at = np.logical_and(np.equal(confidence, threshold), np.less(tie_draw, tie_share))
        below = np.logical_or(below, at)
    result: Bools = scalar_or_array(below, confidence, threshold)
    return result


def tie_draws(rows: NDArray[Any]) -> FloatArray:
    """A number in [0, 1) per input row, fixed by the row's bytes: ties break the same way for
    the same input, on every run and in every process (no random state to share)."""
    data = np.ascontiguousarray(rows, dtype=np.float32)
    out = np.empty(len(data))
    for i, row in enumerate(data):
        digest = hashlib.blake2b(row.tobytes(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def escalate(hard: Bools, remaining: Floats, round_trip: Floats, wan_up: Bools) -> Bools:
    """Send to the cloud: hard, the WAN up, and time left for the round trip."""
    send = np.logical_and(np.logical_and(hard, wan_up), np.greater_equal(remaining, round_trip))
    result: Bools = scalar_or_array(send, hard, remaining, round_trip, wan_up)
    return result


def cascade_answer(
    local_latency: Floats, cloud_latency: Floats, deadline: Floats, escalated: Bools
) -> tuple[Any, Any]:
    """(latency, answered by the cloud) of each request.

    `cloud_latency` is when the cloud's answer would reach the requester (inf if lost);
    it only matters where `escalated`. A late cloud answer is not waited for: the local
    answer goes out at the deadline.
    """
    in_time = np.logical_and(escalated, np.less_equal(cloud_latency, deadline))
    late = np.logical_and(escalated, np.logical_not(in_time))
    latency = np.where(
        in_time, cloud_latency, np.where(late, np.maximum(local_latency, deadline), local_latency)
    )
    inputs = (local_latency, cloud_latency, deadline, escalated)
    return scalar_or_array(latency, *inputs), scalar_or_array(in_time, *inputs)


class RoundTripTracker:
    """Recent cloud round trips (seconds), and the budget an escalation must leave for one.

    Until `min_samples` round trips have been seen, the estimate is the prior (the planned
    round trip of the link). Late escalations should be observed as the time waited (a
    lower bound of their round trip), so a degrading WAN raises the estimate.
    """

    def __init__(
        self,
        prior: float,
        window: int = DEFAULT_WINDOW,
        quantile: float = DEFAULT_QUANTILE,
        min_samples: int = 16,
    ) -> None:
        if not 0 < quantile < 1:
            raise ValueError(f"quantile must be between 0 and 1, got {quantile}")
        self.prior = float(prior)
        self.quantile = quantile
        self.min_samples = min_samples
        self._ring: FloatArray = np.zeros(max(window, 1))
        self._count = 0

    @property
    def seen(self) -> int:
        return self._count

    def observe(self, round_trips: Floats) -> None:
        """Remember one round trip or an array of them (oldest first)."""
        values = np.atleast_1d(np.asarray(round_trips, dtype=np.float64))
        values = values[np.isfinite(values)]
        size = len(self._ring)
        if len(values) >= size:
            self._ring[:] = values[-size:]
            self._count += len(values)
            return
        start = self._count % size
        head = min(len(values), size - start)
        self._ring[start : start + head] = values[:head]
        self._ring[: len(values) - head] = values[head:]
        self._count += len(values)

    def estimate(self) -> float:
        """The round trip to budget for: a high quantile of the recent ones."""
        n = min(self._count, len(self._ring))
        if n < self.min_samples:
            return self.prior
        return float(np.quantile(self._ring[:n], self.quantile))
