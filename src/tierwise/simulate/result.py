"""What a simulation measured: per feature, per site, per strategy, and over time."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tierwise.rules._types import FloatArray
from tierwise.simulate.histogram import Histogram


@dataclass
class FeatureStats:
    """One feature under one strategy, all its sites together (latency: worst site)."""

    feature: str
    placement: str
    label: str
    deadline: float
    percentile: float
    requests: int
    answered: int
    late: int  # answered after the deadline
    failed: int  # never answered (a link down on the way)
    p50: float
    p90: float
    p99: float
    latency: float  # at the feature's own percentile, worst site (as the plan reports it)
    latency_site: str  # the site where it is worst
    escalated: int  # requests sent to the cloud
    escalated_in_time: int  # of those, answered by the cloud before the deadline
    upstream_bytes: float  # over the WAN, both ways: requests sent to the cloud + telemetry
    upstream_bps: float  # mean over the run
    cost: float  # $ in this run: cloud calls or instance time, and egress
    cost_per_month: float  # the same rate over a month

    @property
    def misses(self) -> int:
        return self.late + self.failed

    @property
    def availability(self) -> float:
        return self.answered / self.requests if self.requests else 1.0

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.requests if self.requests else 0.0

    @property
    def p_miss(self) -> float:
        return self.misses / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            misses=self.misses,
            availability=self.availability,
            escalation_rate=self.escalation_rate,
            p_miss=self.p_miss,
        )
        return data


@dataclass
class SiteStats:
    """A site's links and outbox over the run."""

    site: str
    wan_down_seconds: float
    lan_down_seconds: float
    outbox_peak_bytes: float
    outbox_sent_bytes: float
    outbox_dropped_bytes: float
    outbox_max_delay: float  # s: the longest a delivered byte waited in the outbox


@dataclass
class Series:
    """Figures over time, in equal bins over the run (for plots)."""

    edges: FloatArray  # bin edges, s
    requests: FloatArray  # (features, bins)
    misses: FloatArray  # (features, bins)
    p99: FloatArray  # (features, bins): latency of answered requests; NaN where none
    cost: FloatArray  # (bins,): $ spent in each bin
    outbox: FloatArray  # (sites, bins): peak outbox bytes in each bin
    wan_down: FloatArray  # (sites, bins): share of each bin the WAN was down
    instances: FloatArray  # (bins,): cloud instances (mean over the bin)


@dataclass
class StrategyRun:
    """One assignment replayed over the run."""

    strategy: str
    features: list[FeatureStats]
    sites: list[SiteStats]
    cost: float
    cost_per_month: float
    cost_breakdown: dict[str, float]  # $ in this run
    cloud_peak_instances: int
    cloud_instance_hours: float
    requests: int
    series: Series | None = field(default=None, repr=False)
    histograms: dict[str, Histogram] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "features": [f.to_dict() for f in self.features],
            "sites": [asdict(s) for s in self.sites],
            "cost": self.cost,
            "cost_per_month": self.cost_per_month,
            "cost_breakdown": self.cost_breakdown,
            "cloud_peak_instances": self.cloud_peak_instances,
            "cloud_instance_hours": self.cloud_instance_hours,
            "requests": self.requests,
        }


@dataclass
class SimResult:
    """Every strategy simulated over the same run (same seed, same outages)."""

    spec: str
    duration: float
    seed: int
    runs: dict[str, StrategyRun]
    wall_seconds: float

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.runs.values())

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _finite(
            {
                "spec": self.spec,
                "duration": self.duration,
                "seed": self.seed,
                "wall_seconds": self.wall_seconds,
                "requests": self.requests,
                "strategies": {k: v.to_dict() for k, v in self.runs.items()},
            }
        )
        return data


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: an unmeasured figure becomes null."""
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    if isinstance(value, np.floating | np.integer):
        return value.item()
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
