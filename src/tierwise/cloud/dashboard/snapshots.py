"""Live figures from the `metrics` stream each edge agent uploads (`metrics.snapshot` events).

A snapshot carries cumulative counters per (feature, package, version), the latency
percentiles of the recent answers and the outbox's depth. Rates and shares come from the
difference between two consecutive snapshots; a counter that went down means the agent
restarted, and that interval is left out rather than shown as a negative rate. Snapshots
travel through the outbox, so after an outage they arrive late but complete.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tierwise.cloud.dashboard.views import FeatureNow, OutboxNow, OutboxPoint, ServicePoint
from tierwise.cloud.db import telemetry

METRICS_STREAM = "metrics"  # tierwise.edge.agent.METRICS_STREAM (the cloud cannot import edge)
SNAPSHOT_KIND = "metrics.snapshot"
_COUNTED = ("requests", "escalations", "errors", "deadline_misses")


@dataclass(frozen=True)
class Snapshot:
    ts: float  # when the agent took it
    received_at: float  # when the cloud got it
    body: dict[str, Any]

    def totals(self) -> dict[str, dict[str, int]]:
        """{feature: {counter: sum over the feature's versions}}."""
        out: dict[str, dict[str, int]] = {}
        for entry in self.versions():
            sums = out.setdefault(str(entry.get("feature")), dict.fromkeys(_COUNTED, 0))
            for name in _COUNTED:
                sums[name] += _int(entry.get(name))
        return out

    def versions(self) -> list[dict[str, Any]]:
        versions = self.body.get("versions")
        return [v for v in versions if isinstance(v, dict)] if isinstance(versions, list) else []

    def outbox(self) -> dict[str, Any]:
        outbox = self.body.get("outbox")
        return outbox if isinstance(outbox, dict) else {}

    def outbox_point(self) -> OutboxPoint:
        oldest = self.body.get("outbox_oldest_ts")
        age = max(0.0, self.ts - float(oldest)) if isinstance(oldest, int | float) else None
        return OutboxPoint(
            ts=self.ts,
            depth_events=_int(self.outbox().get("depth_events")),
            oldest_unsent_age_s=age,
        )


def recent_snapshots(conn: sa.Connection, site: str, limit: int) -> list[Snapshot]:
    """The site's last `limit` snapshots, oldest first (one index range read)."""
    rows = conn.execute(
        sa.select(telemetry.c.ts, telemetry.c.received_at, telemetry.c.body)
        .where(
            telemetry.c.site == site,
            telemetry.c.stream == METRICS_STREAM,
            telemetry.c.kind == SNAPSHOT_KIND,
        )
        .order_by(telemetry.c.seq.desc())
        .limit(limit)
    ).all()
    return [
        Snapshot(r.ts, r.received_at, r.body) for r in reversed(rows) if isinstance(r.body, dict)
    ]


def service_points(snapshots: list[Snapshot]) -> dict[str, list[ServicePoint]]:
    """{feature: one point per interval between consecutive snapshots}, oldest first."""
    points: dict[str, list[ServicePoint]] = {}
    for before, after in itertools.pairwise(snapshots):
        dt = after.ts - before.ts
        if dt <= 0:
            continue
        was, now = before.totals(), after.totals()
        for feature, counts in now.items():
            prior = was.get(feature, dict.fromkeys(_COUNTED, 0))
            delta = {name: counts[name] - prior[name] for name in _COUNTED}
            if any(d < 0 for d in delta.values()):
                continue  # the agent restarted within this interval
            p50, p99 = _percentiles(before, after, feature)
            points.setdefault(feature, []).append(
                ServicePoint(
                    ts=after.ts,
                    requests_per_s=delta["requests"] / dt,
                    p50_ms=p50,
                    p99_ms=p99,
                    escalated_share=(
                        delta["escalations"] / delta["requests"] if delta["requests"] else None
                    ),
                    deadline_misses=delta["deadline_misses"],
                    errors=delta["errors"],
                )
            )
    return points


def features_now(snapshots: list[Snapshot]) -> list[FeatureNow]:
    """Each feature's figures over the last interval (requests/s needs two snapshots)."""
    if not snapshots:
        return []
    points = service_points(snapshots[-2:])
    last = snapshots[-1]
    out = []
    for feature, counts in sorted(last.totals().items()):
        point = points.get(feature, [None])[-1]
        p50, p99 = (point.p50_ms, point.p99_ms) if point else _percentiles(last, last, feature)
        out.append(
            FeatureNow(
                feature=feature,
                requests_per_s=point.requests_per_s if point else None,
                p50_ms=p50,
                p99_ms=p99,
                escalated_share=point.escalated_share if point else None,
                deadline_misses=counts["deadline_misses"],
            )
        )
    return out


def _percentiles(before: Snapshot, after: Snapshot, feature: str) -> tuple[float | None, ...]:
    """p50 and p99 of the version that served the most of this interval (the recent window of
    each version: a rollout's new version shows its own latency at once)."""
    earlier = {
        (v.get("package"), v.get("version")): _int(v.get("requests"))
        for v in before.versions()
        if v.get("feature") == feature
    }
    best: dict[str, Any] | None = None
    best_growth = -1
    for v in after.versions():
        if v.get("feature") != feature:
            continue
        growth = _int(v.get("requests")) - earlier.get((v.get("package"), v.get("version")), 0)
        if before is after:
            growth = _int(v.get("requests"))
        if growth > best_growth:
            best, best_growth = v, growth
    if best is None:
        return None, None
    return _float(best.get("p50_ms")), _float(best.get("p99_ms"))


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def outbox_now(snapshots: list[Snapshot], now: float, stale_s: float) -> OutboxNow:
    """The outbox as last reported; estimated when the newest snapshot is over `stale_s` old."""
    if not snapshots:
        return OutboxNow(
            depth_events=None, oldest_unsent_age_s=None, dropped_events=None, estimated=False
        )
    last = snapshots[-1]
    point = last.outbox_point()
    dropped = int(last.outbox().get("dropped_events") or 0)
    silent_s = max(0.0, now - last.ts)
    if silent_s <= stale_s:
        return OutboxNow(
            depth_events=point.depth_events,
            oldest_unsent_age_s=point.oldest_unsent_age_s,
            dropped_events=dropped,
            estimated=False,
        )
    # The newest snapshot is old: the site is offline, or back but still sending its backlog
    # (status reports go straight to the cloud, snapshots queue behind the outbox). Every
    # answer given since is one more event in the outbox.
    rate = sum((pts[-1].requests_per_s or 0.0) for pts in service_points(snapshots[-2:]).values())
    oldest_age = (point.oldest_unsent_age_s or 0.0) + silent_s
    return OutboxNow(
        depth_events=point.depth_events + round(rate * silent_s),
        oldest_unsent_age_s=oldest_age,
        dropped_events=dropped,
        estimated=True,
    )
