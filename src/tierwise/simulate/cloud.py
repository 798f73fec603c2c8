"""The cloud: an autoscaled pool of instances, with a scale-up delay, as a fluid queue.

Time is cut into steps. In each step the pool can do `instances × step` seconds of
inference; work that arrives beyond that waits (FIFO) for later capacity. Once a step the
autoscaler sizes the pool so that the recent load keeps it `max_utilization` busy and the
backlog clears in `DRAIN_HORIZON` seconds; new instances serve only after
`scale_up_delay`, instances idle for `SCALE_DOWN_AFTER` are released, and `min_instances`
are always kept. A cloud priced per call is a managed service: it never queues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tierwise.rules._types import FloatArray
from tierwise.spec.model import CloudTier

DRAIN_HORIZON = 30.0  # s: the backlog the autoscaler sees is one it wants gone in this time
SMOOTHING = 30.0  # s: time constant of the load estimate (a typical metrics window)
SCALE_DOWN_AFTER = 300.0  # s: an instance is released after this long with no use for it


@dataclass
class CloudPool:
    """State of the pool between windows, and what it did (instance-seconds, peak size)."""

    tier: CloudTier
    step: float
    ready: int = 0
    pending: list[tuple[float, int]] = field(default_factory=list)  # (ready at, count)
    backlog: float = 0.0
    load: float = 0.0
    surplus_since: float | None = None
    instance_seconds: float = 0.0
    busy_seconds: float = 0.0
    peak: int = 0

    def __post_init__(self) -> None:
        self.ready = self.tier.min_instances
        self.peak = self.ready

    def warm(self, load: float) -> None:
        """Start sized for `load` (busy instance-seconds per second), as a running pool is."""
        if load > 0 and not self.managed:
            self.ready = max(self.ready, math.ceil(load / self.tier.max_utilization - 1e-9))
            self.load = load
            self.peak = max(self.peak, self.ready)

    @property
    def managed(self) -> bool:
        """Priced per call: capacity is the provider's problem, no queue here."""
        return self.tier.price_per_call is not None

    def run(self, t0: float, work: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Advance over len(work) steps from t0 given the work (s) arriving in each.

        Returns (backlog at each step's start, cumulative capacity at each step edge,
        instances in each step); waits come from `wait_times`.
        """
        n = len(work)
        backlog = np.zeros(n)
        instances = np.zeros(n)
        self.busy_seconds += float(work.sum())
        if self.managed:
            return backlog, np.full(n + 1, np.inf), instances
        cap_edges = np.zeros(n + 1)
        alpha = 1 - math.exp(-self.step / SMOOTHING)
        max_util = self.tier.max_utilization
        for b in range(n):
            t = t0 + b * self.step
            while self.pending and self.pending[0][0] <= t:
                self.ready += self.pending.pop(0)[1]
            backlog[b] = self.backlog
            instances[b] = self.ready
            capacity = self.ready * self.step
            cap_edges[b + 1] = cap_edges[b] + capacity
            self.backlog = max(0.0, self.backlog + work[b] - capacity)
            self.load += alpha * (work[b] / self.step - self.load)
            self._scale(t, self.load, max_util)
        self.instance_seconds += float(instances.sum() * self.step)
        self.peak = max(self.peak, int(instances.max()) if n else 0)
        return backlog, cap_edges, instances

    def _scale(self, t: float, load: float, max_util: float) -> None:
        need = (load + self.backlog / DRAIN_HORIZON) / max_util
        target = max(self.tier.min_instances, math.ceil(need - 1e-9))
        if need > 0:
            target = max(target, 1)
        coming = self.ready + sum(c for _, c in self.pending)
        if target > coming:
            self.pending.append((t + self.tier.scale_up_delay, target - coming))
            self.surplus_since = None
        elif target < self.ready and not self.pending:
            if self.surplus_since is None:
                self.surplus_since = t
            elif t - self.surplus_since >= SCALE_DOWN_AFTER:
                self.ready = target
                self.surplus_since = None
        else:
            self.surplus_since = None

    def projected_edges(self, cap_edges: FloatArray, extra_steps: int) -> FloatArray:
        """Cumulative capacity beyond the window: the pool as it is, plus what is coming."""
        if self.managed:
            return cap_edges
        future = np.full(extra_steps, float(max(self.ready, 1)))
        for ready_at, count in self.pending:
            del ready_at  # arrives within the projection: counted from its start (optimistic)
            future += count
        return np.concatenate([cap_edges, cap_edges[-1] + np.cumsum(future * self.step)])


def wait_times(
    arrive: FloatArray, t0: float, step: float, backlog: FloatArray, cap_edges: FloatArray
) -> FloatArray:
    """Fluid FIFO wait of work arriving at `arrive`: until capacity clears what is ahead."""
    if not np.isfinite(cap_edges[-1]) or len(arrive) == 0:
        return np.zeros(len(arrive))
    n = len(backlog)
    pos = np.clip((arrive - t0) / step, 0, n - 1e-9)
    b = pos.astype(np.int64)
    edge_t = t0 + np.arange(len(cap_edges)) * step
    done_at_arrival = np.interp(arrive, edge_t, cap_edges)
    need = done_at_arrival + np.maximum(backlog[b] - (done_at_arrival - cap_edges[b]), 0.0)
    # the first instant cumulative capacity reaches `need` (cap_edges is non-decreasing)
    k = np.searchsorted(cap_edges, need, side="left")
    k = np.clip(k, 1, len(cap_edges) - 1)
    lo, hi = cap_edges[k - 1], cap_edges[k]
    frac = np.where(hi > lo, (need - lo) / np.maximum(hi - lo, 1e-300), 1.0)
    finish = edge_t[k - 1] + np.clip(frac, 0.0, 1.0) * step
    return np.maximum(finish - arrive, 0.0)
