"""The JSON bodies of the dashboard's endpoints: what the fleet page (or a CLI) reads.

Plain read models: the cloud builds them from what it already stores (assignments, status
reports, rollouts, the sites' `metrics` telemetry stream) and keeps no state of its own for them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from tierwise.wire import RolloutState


class InstalledFeature(TypedDict):
    """One feature at one site: what the cloud deployed there and what the site says it runs.

    A TypedDict, not a model: a fleet has thousands, built from the cloud's own tables.
    """

    feature: str
    package: str
    deployed_version: Annotated[int | None, Field(description="the version the cloud assigns")]
    installed_version: Annotated[
        int | None, Field(description="the version the site last reported, if healthy")
    ]
    healthy: Annotated[bool | None, Field(description="null: not reported by the site")]
    detail: str
    placement: str | None
    deadline_ms: float | None


class OutboxNow(BaseModel):
    """The site's outbox: as last reported, or estimated while the site cannot report."""

    depth_events: int | None
    oldest_unsent_age_s: float | None
    dropped_events: int | None
    estimated: bool = Field(
        description="the site is offline: the depth grows by its last measured rate"
    )


class SiteSummary(BaseModel):
    """A site on the fleet page: reachable or not, what it runs, its outbox."""

    site: str
    online: bool
    last_contact: float | None = Field(description="Unix time of its last report or telemetry")
    outbox: OutboxNow
    features: list[InstalledFeature]


class RolloutSummary(BaseModel):
    """A rollout's stage in an operator's words, with the reason the cloud gave."""

    id: int
    package: str
    version: int
    state: RolloutState
    stage: str = Field(description="canary, staged, done or rolled back")
    reason: str
    canary_sites: list[str]
    other_sites: list[str]
    created_at: float
    updated_at: float


class Fleet(BaseModel):
    """Every site the caller may see, and the rollouts that touch them."""

    now: float
    offline_after_s: float
    sites: list[SiteSummary]
    rollouts: list[RolloutSummary]


class ServicePoint(BaseModel):
    """A feature's service over one interval between two snapshots, stamped at its end."""

    ts: float
    requests_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    escalated_share: float | None
    deadline_misses: int = Field(description="misses within this interval")
    errors: int = Field(description="errors within this interval")


class PlanCheck(BaseModel):
    """A figure the plan (or the deployed budget) promised beside the measured one."""

    metric: str
    planned: float
    measured: float | None
    gap: float | None = Field(description="(measured - planned) / planned")
    flagged: bool = Field(description="the gap exceeds the tolerance (15%)")


class FeatureLive(BaseModel):
    feature: str
    package: str | None
    version: int | None
    deadline_ms: float | None
    planned_escalated: float | None
    points: list[ServicePoint]
    plan: list[PlanCheck]


class OutboxPoint(BaseModel):
    ts: float
    depth_events: int
    oldest_unsent_age_s: float | None


class DriftEvent(BaseModel):
    """A cascade's hard share moved away from the plan's (or came back): the learning loop's cue."""

    ts: float
    feature: str
    package: str
    version: int
    drifted: bool = Field(description="false: the share is back near the plan's")
    planned: float
    observed: float
    rows: int = Field(description="recent rows the observed share is over")
    p_value: float


class SiteLive(BaseModel):
    """Charts of one site: its features' service and its outbox, oldest point first."""

    site: str
    now: float
    online: bool
    last_contact: float | None
    outbox: OutboxNow
    outbox_points: list[OutboxPoint]
    features: list[FeatureLive]
    drift: list[DriftEvent] = Field(description="the site's latest escalation drift events")
