"""One site's live charts: each feature's service against its budget and plan, and its outbox.

While a site is offline the cloud hears nothing from it, but its outbox keeps filling: the
view then estimates the depth from the last measured request rate and says so
(`estimated`), until snapshots taken within `site_offline_after_s` arrive again, after the
backlog. Snapshot times are the site's clock: a site whose clock runs far behind shows as
estimated.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from tierwise.cloud.dashboard.fleet import last_contact
from tierwise.cloud.dashboard.snapshots import (
    FeatureFigures,
    answer_rate,
    outbox_now,
    recent_snapshots,
    service_points,
)
from tierwise.cloud.dashboard.views import (
    DriftEvent,
    FeatureLive,
    PlanCheck,
    ServicePoint,
    SiteLive,
)
from tierwise.cloud.db import assignments, telemetry

AGENT_STREAM = "agent"  # tierwise.edge.agent.AGENT_STREAM
DRIFT_KIND = "escalation.drift"
MAX_DRIFT_EVENTS = 10
PLAN_TOLERANCE = 0.15  # a measured figure further than this from the planned one is flagged


def site_live(
    conn: sa.Connection, site: str, now: float, offline_after_s: float, points: int
) -> SiteLive:
    """The last `points` snapshots of `site` as chart series, read in one transaction."""
    snapshots = recent_snapshots(conn, site, points + 1)  # n + 1 snapshots make n intervals
    contact = last_contact(conn, site, snapshots[-1].received_at if snapshots else None)
    online = contact is not None and now - contact <= offline_after_s
    series = service_points(snapshots)
    deployed = {
        r.feature: r
        for r in conn.execute(sa.select(assignments).where(assignments.c.site == site)).all()
    }
    latest = snapshots[-1].features if snapshots else {}
    features = [
        _feature(name, deployed.get(name), latest.get(name), series.get(name, []))
        for name in sorted(set(deployed) | set(series) | set(latest))
    ]
    return SiteLive(
        site=site,
        now=now,
        online=online,
        last_contact=contact,
        outbox=outbox_now(
            snapshots[-1].head if snapshots else None,
            now,
            offline_after_s,
            lambda: answer_rate(snapshots),
        ),
        outbox_points=[s.outbox for s in snapshots],
        features=features,
        drift=drift_events(conn, site),
    )


def drift_events(conn: sa.Connection, site: str) -> list[DriftEvent]:
    """The newest escalation drift events the site's agent recorded (its `agent` stream)."""
    rows = conn.execute(
        sa.select(telemetry.c.ts, telemetry.c.body)
        .where(
            telemetry.c.site == site,
            telemetry.c.stream == AGENT_STREAM,
            telemetry.c.kind == DRIFT_KIND,
        )
        .order_by(telemetry.c.seq.desc())
        .limit(MAX_DRIFT_EVENTS)
    ).all()
    events = []
    for r in rows:
        try:
            events.append(DriftEvent.model_validate({**(r.body or {}), "ts": r.ts}))
        except ValidationError:
            continue  # an agent of another version wrote other fields: not this view's to show
    return events


def _feature(
    name: str, assigned: Any, latest: FeatureFigures | None, points: list[ServicePoint]
) -> FeatureLive:
    """What the site runs (its last snapshot says; else what the cloud assigned) and how."""
    package = assigned.package if assigned is not None else None
    version = assigned.version if assigned is not None else None
    if latest is not None:
        package, version = latest.package, latest.version
    deadline = float(assigned.deadline_ms) if assigned is not None else None
    planned = assigned.planned_escalated if assigned is not None else None
    return FeatureLive(
        feature=name,
        package=package,
        version=version,
        deadline_ms=deadline,
        planned_escalated=planned,
        points=points,
        plan=_plan_checks(deadline, planned, points),
    )


def _plan_checks(
    deadline_ms: float | None, planned_escalated: float | None, points: list[ServicePoint]
) -> list[PlanCheck]:
    """Measured over the charted window, beside the deployed budget and the plan's share."""
    checks = []
    p99s = [p.p99_ms for p in points if p.p99_ms is not None]
    if deadline_ms is not None:  # only slower than the budget is a problem
        measured = p99s[-1] if p99s else None
        checks.append(_check("p99 latency (ms) vs budget", deadline_ms, measured, both_ways=False))
    if planned_escalated is not None:
        requests = sum((p.requests_per_s or 0.0) for p in points)
        escalated = sum((p.requests_per_s or 0.0) * (p.escalated_share or 0.0) for p in points)
        measured = escalated / requests if requests else None
        checks.append(_check("share escalated to the cloud", planned_escalated, measured))
    return checks


def _check(
    metric: str, planned: float, measured: float | None, both_ways: bool = True
) -> PlanCheck:
    gap = _gap(planned, measured)
    flagged = gap is not None and (abs(gap) if both_ways else gap) > PLAN_TOLERANCE
    return PlanCheck(metric=metric, planned=planned, measured=measured, gap=gap, flagged=flagged)


def _gap(planned: float, measured: float | None) -> float | None:
    if measured is None or planned <= 0:
        return None
    return (measured - planned) / planned
