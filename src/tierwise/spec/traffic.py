"""The optional `traffic:` section: how load and failures vary over time, for `simulate`.

The rest of the spec describes the steady state the planner sizes for; this section adds
what a simulated day should live through:

    traffic:
      daily: [0.4, 0.3, 0.3, 0.3, 0.4, 0.6, 0.9, 1.2, 1.4, 1.5, 1.5, 1.4,
              1.3, 1.4, 1.5, 1.5, 1.4, 1.3, 1.1, 1.0, 0.9, 0.7, 0.6, 0.5]
      spikes:
        - {start: 2h, duration: 15min, factor: 5}          # every feature at every site
        - {start: 6h, duration: 5min, factor: 3, features: [detect], sites: [store-1]}
      outages:
        - {start: 1h, duration: 20min, sites: [store-1]}   # the WAN (edge_cloud) by default
      random_outages: true     # also draw outages from each link's availability/mean_outage
      outbox: {cap: 64MB, policy: drop-oldest}

`daily` gives one multiplier per hour of the day (any count of equal slots works); it is
normalized to a mean of 1, so a feature's `rate` stays its mean rate over a day.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tierwise.spec.units import Duration, Size

DEFAULT_OUTBOX_CAP = 64e6  # bytes: a few hours of typical telemetry on a gateway's disk


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Spike(_Strict):
    """A burst: request rates multiplied by `factor` from `start` for `duration`."""

    start: Duration = Field(description="time from the start of the simulation")
    duration: Duration
    factor: float = Field(gt=0, description="rate multiplier, e.g. 5 for five times the load")
    features: list[str] | None = Field(None, description="features affected (default: all)")
    sites: list[str] | None = Field(None, description="sites affected (default: all)")


class ScheduledOutage(_Strict):
    """A link down from `start` for `duration` (on top of, or instead of, random outages)."""

    start: Duration
    duration: Duration
    link: Literal["edge_cloud", "device_edge"] = "edge_cloud"
    sites: list[str] | None = Field(None, description="sites affected (default: all)")


class OutboxSettings(_Strict):
    """The edge outbox the simulation assumes: a byte cap and what goes when it is full."""

    cap: Size = DEFAULT_OUTBOX_CAP
    policy: Literal["drop-oldest", "drop-newest"] = "drop-oldest"


class Traffic(_Strict):
    """Load and failures over time: daily pattern, spikes, scheduled outages, outbox."""

    daily: list[float] | None = Field(
        None, description="multipliers for equal slots of a day (e.g. 24 hourly), mean-normalized"
    )
    spikes: list[Spike] = Field(default_factory=list)
    outages: list[ScheduledOutage] = Field(default_factory=list)
    random_outages: bool = Field(
        True, description="draw outages from each link's availability and mean_outage"
    )
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)

    @field_validator("daily")
    @classmethod
    def _daily(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if not v or any(x < 0 for x in v) or sum(v) <= 0:
            raise ValueError("daily needs at least one multiplier, none negative, not all 0")
        return v
