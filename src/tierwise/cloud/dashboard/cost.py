"""Cost: the plan's $/month per strategy beside the same strategies at the traffic measured now.

The operator uploads the plan the fleet runs (`PUT /v1/plan`, the document `tierwise plan
--json` writes; `tierwise up` does it itself). Of each strategy the cloud keeps the monthly
total and each feature's own share of it — calls and bytes, which grow with traffic — and
each feature's requests/s as the spec states them. What is left of the total (edge gateways,
device upgrades) is fixed: it does not move with traffic.

The projection: each feature's requests/s over about the last `WINDOW_S` seconds of every
site's metrics snapshots, summed over the fleet; each strategy's feature costs scaled by measured
over stated requests/s, plus its fixed part. Linear in traffic by construction — right for
per-call and per-byte prices and for instance-hours at a capped utilization (busy time grows
with calls), and it leaves out what would change in steps at very different traffic (one more
gateway, a minimum instance count).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from tierwise.cloud.dashboard.fleet import fleet_sites
from tierwise.cloud.dashboard.snapshots import window_ends
from tierwise.cloud.db import Database, plans
from tierwise.wire import NonNegative, Text

WINDOW_S = 60.0  # measured traffic: the last minute of snapshots


class PlannedFeature(BaseModel):
    model_config = ConfigDict(extra="ignore")

    feature: Text
    cost: float = Field(
        ge=0, allow_inf_nan=False, description="$/month of this feature alone (calls, bytes)"
    )


class PlannedStrategy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cost: float = Field(ge=0, allow_inf_nan=False, description="$/month in all")
    features: list[PlannedFeature]


class UploadedPlan(BaseModel):
    """What the cloud reads of a plan document (the rest of it is ignored)."""

    model_config = ConfigDict(extra="ignore")

    # Text: stored in the database, where PostgreSQL refuses NUL (the fuzz test found it)
    spec: Text
    strategies: dict[Text, PlannedStrategy] = Field(min_length=1)
    requests_per_s: dict[Text, NonNegative] = Field(
        description="each feature's requests/s over all its sites, as the spec states them"
    )


class PlanStored(BaseModel):
    spec: str
    strategies: list[str]
    uploaded_at: float


class FeatureTraffic(BaseModel):
    feature: str
    planned_requests_per_s: float | None
    measured_requests_per_s: float = Field(description="summed over the sites, last minute")
    sites_measured: int


class StrategyCost(BaseModel):
    strategy: str
    plan_per_month: float = Field(description="$/month at the spec's traffic (the plan)")
    measured_per_month: float = Field(description="$/month at the traffic measured now")
    fixed_per_month: float = Field(description="the part that does not move with traffic")


class CostView(BaseModel):
    """The plan's cost per strategy beside the same at the measured traffic."""

    spec: str | None = Field(description="null: no plan uploaded yet (PUT /v1/plan)")
    uploaded_at: float | None
    window_s: float
    traffic: list[FeatureTraffic]
    strategies: list[StrategyCost]


def store_plan(db: Database, plan: UploadedPlan, now: float) -> PlanStored:
    """Keep the plan (one per cloud: a new upload replaces the last)."""
    with db.write() as conn:
        conn.execute(plans.delete())
        conn.execute(
            plans.insert().values(id=1, spec=plan.spec, body=plan.model_dump(), uploaded_at=now)
        )
    return PlanStored(spec=plan.spec, strategies=sorted(plan.strategies), uploaded_at=now)


def cost_view(conn: sa.Connection) -> CostView:
    row = conn.execute(sa.select(plans.c.body, plans.c.uploaded_at)).first()
    measured, sites_of = _measured(conn)
    plan = None
    if row is not None:
        body = row.body if isinstance(row.body, dict) else json.loads(row.body)
        plan = UploadedPlan.model_validate(body)
    stated = plan.requests_per_s if plan is not None else {}
    traffic = [
        FeatureTraffic(
            feature=f,
            planned_requests_per_s=stated.get(f),
            measured_requests_per_s=measured.get(f, 0.0),
            sites_measured=sites_of.get(f, 0),
        )
        for f in sorted(set(stated) | set(measured))
    ]
    return CostView(
        spec=plan.spec if plan is not None else None,
        uploaded_at=row.uploaded_at if row is not None else None,
        window_s=WINDOW_S,
        traffic=traffic,
        strategies=[
            _project(name, strategy, stated, measured)
            for name, strategy in sorted(plan.strategies.items() if plan is not None else ())
        ],
    )


def _project(
    name: str, strategy: PlannedStrategy, stated: dict[str, float], measured: dict[str, float]
) -> StrategyCost:
    usage = sum(f.cost for f in strategy.features)
    fixed = max(strategy.cost - usage, 0.0)
    projected = fixed
    for f in strategy.features:
        rate = stated.get(f.feature)
        if rate:  # a feature without a stated rate cannot be scaled: counted as planned
            projected += f.cost * measured.get(f.feature, 0.0) / rate
        else:
            projected += f.cost
    return StrategyCost(
        strategy=name,
        plan_per_month=strategy.cost,
        measured_per_month=projected,
        fixed_per_month=fixed,
    )


def _measured(conn: sa.Connection) -> tuple[dict[str, float], dict[str, int]]:
    """Requests/s per feature over about the last minute of each site's snapshots, fleet-wide."""
    rates: dict[str, float] = {}
    sites_of: dict[str, int] = {}
    for site in fleet_sites(conn):
        ends = window_ends(conn, site, WINDOW_S)
        if ends is None:
            continue
        first, last = ends
        span = last.ts - first.ts
        if span <= 0:
            continue
        for feature, now in last.features.items():
            was = first.features.get(feature)
            served = now.requests - (was.requests if was is not None else 0)
            if served < 0:  # the agent restarted within the window: its count starts over
                served = now.requests
            rates[feature] = rates.get(feature, 0.0) + served / span
            sites_of[feature] = sites_of.get(feature, 0) + 1
    return rates, sites_of
