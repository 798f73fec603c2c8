"""Live figures from the `metrics` stream each edge agent uploads (`metrics.snapshot` events).

A snapshot carries cumulative counters per (feature, package, version), the latency
percentiles of the recent answers and the outbox's depth. Rates and shares come from the
difference between two consecutive snapshots; a counter that went down means the agent
restarted, and that interval is left out rather than shown as a negative rate. Snapshots
travel through the outbox, so after an outage they arrive late but complete.

Each snapshot's body is read once into `FeatureFigures` (a fleet of a thousand features
times a hundred points is read on every poll of the page).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
import sqlalchemy as sa

from tierwise.cloud.dashboard.views import OutboxNow, OutboxPoint, ServicePoint
from tierwise.cloud.db import telemetry

METRICS_STREAM = "metrics"  # tierwise.edge.agent.METRICS_STREAM (the cloud cannot import edge)
SNAPSHOT_KIND = "metrics.snapshot"
_SITES_PER_QUERY = 500  # bound parameters per query stay well below SQLite's limits


@dataclass
class FeatureFigures:
    """One feature in one snapshot: counters summed over its versions, and each version's
    cumulative requests and recent latency percentiles."""

    requests: int = 0
    escalations: int = 0
    errors: int = 0
    deadline_misses: int = 0
    versions: dict[tuple[Any, Any], tuple[int, float | None, float | None]] = field(
        default_factory=dict
    )  # (package, version) -> (requests, p50_ms, p99_ms)
    package: str | None = None  # of the version that started last
    version: int | None = None


@dataclass(frozen=True)
class SnapshotHead:
    """What the fleet view needs of a site's newest snapshot: when, and its outbox."""

    ts: float
    received_at: float
    outbox: OutboxPoint
    dropped_events: int


@dataclass(frozen=True)
class Snapshot:
    ts: float  # when the agent took it
    received_at: float  # when the cloud got it
    body: dict[str, Any]

    @classmethod
    def parse(cls, ts: float, received_at: float, body: Any) -> Snapshot:
        """From a row: `body` is JSON text (SQLite) or already a dict (psycopg decodes json)."""
        if isinstance(body, str | bytes):
            body = pydantic_core.from_json(body)
        return cls(ts, received_at, body if isinstance(body, dict) else {})

    @functools.cached_property
    def features(self) -> dict[str, FeatureFigures]:
        """Per feature, read from the body on first use (the fleet view needs only the outbox)."""
        features: dict[str, FeatureFigures] = {}
        versions = self.body.get("versions")
        for v in versions if type(versions) is list else ():
            if type(v) is not dict:
                continue
            name = str(v.get("feature"))
            f = features.get(name)
            if f is None:
                f = features[name] = FeatureFigures()
            requests = _int(v.get("requests"))
            f.requests += requests
            f.escalations += _int(v.get("escalations"))
            f.errors += _int(v.get("errors"))
            f.deadline_misses += _int(v.get("deadline_misses"))
            package, version = v.get("package"), v.get("version")
            f.versions[package, version] = (
                requests,
                _float(v.get("p50_ms")),
                _float(v.get("p99_ms")),
            )
            f.package, f.version = str(package), _int(version) or None
        return features

    @property
    def head(self) -> SnapshotHead:
        return SnapshotHead(self.ts, self.received_at, self.outbox, self.dropped_events)

    @property
    def _outbox_body(self) -> dict[str, Any]:
        outbox = self.body.get("outbox")
        return outbox if isinstance(outbox, dict) else {}

    @property
    def outbox(self) -> OutboxPoint:
        oldest = self.body.get("outbox_oldest_ts")
        age = max(0.0, self.ts - float(oldest)) if isinstance(oldest, int | float) else None
        depth = _int(self._outbox_body.get("depth_events"))
        return OutboxPoint(ts=self.ts, depth_events=depth, oldest_unsent_age_s=age)

    @property
    def dropped_events(self) -> int:
        return _int(self._outbox_body.get("dropped_events"))


def _columns() -> Any:
    # The body as the driver gives it: pydantic-core parses JSON text twice as fast as the
    # json module SQLAlchemy's JSON type would use.
    body = sa.type_coerce(telemetry.c.body, sa.String).label("body")
    return sa.select(telemetry.c.site, telemetry.c.ts, telemetry.c.received_at, body).where(
        telemetry.c.stream == METRICS_STREAM, telemetry.c.kind == SNAPSHOT_KIND
    )


def recent_snapshots(conn: sa.Connection, site: str, limit: int) -> list[Snapshot]:
    """The site's last `limit` snapshots, oldest first (one index range read)."""
    rows = conn.execute(
        _columns().where(telemetry.c.site == site).order_by(telemetry.c.seq.desc()).limit(limit)
    ).all()
    return [Snapshot.parse(r.ts, r.received_at, r.body) for r in reversed(rows)]


_SITE: sa.BindParameter[str] = sa.bindparam("site")
_UPTO: sa.BindParameter[int] = sa.bindparam("upto")
# Built once: a fleet-wide call runs them per site, and building a statement costs more than
# running it (SQLAlchemy's coercions).
_NEWEST_TWO = (
    _columns().add_columns(telemetry.c.seq).where(telemetry.c.site == _SITE)
    .order_by(telemetry.c.seq.desc()).limit(2)
)  # fmt: skip
_OLDEST = (
    _columns().add_columns(telemetry.c.seq).where(telemetry.c.site == _SITE)
    .order_by(telemetry.c.seq).limit(1)
)  # fmt: skip
_AT_OR_BEFORE = (
    _columns().where(telemetry.c.site == _SITE, telemetry.c.seq <= _UPTO)
    .order_by(telemetry.c.seq.desc()).limit(1)
)  # fmt: skip


def window_ends(
    conn: sa.Connection, site: str, window_s: float
) -> tuple[Snapshot, Snapshot] | None:
    """The site's newest snapshot and one about `window_s` before it (None: fewer than two).

    Two index seeks, not a scan of the window: the newest two snapshots give the cadence and
    how many events of the stream come between two snapshots; the snapshot at or before the
    seq that many cadences back starts the window (its own time is used, so a cadence that
    changed only makes the window a little longer or shorter; no older snapshot: the oldest).
    """
    newest = conn.execute(_NEWEST_TWO, {"site": site}).all()
    if len(newest) < 2:
        return None
    last, before = newest
    cadence, gap = last.ts - before.ts, last.seq - before.seq
    steps = max(1, round(window_s / cadence)) if cadence > 0 else 1
    upto = last.seq - steps * gap
    first = conn.execute(_AT_OR_BEFORE, {"site": site, "upto": upto}).first()
    if first is None:  # the window reaches back before the site's first snapshot
        first = conn.execute(_OLDEST, {"site": site}).first() or before
    return (
        Snapshot.parse(first.ts, first.received_at, first.body),
        Snapshot.parse(last.ts, last.received_at, last.body),
    )


def snapshot_heads(conn: sa.Connection, sites: Iterable[str]) -> dict[str, SnapshotHead]:
    """The newest snapshot's time and outbox of each site, for a whole fleet in few queries.

    The newest seq is looked up per site (an index seek each, as `MAX` over the primary key
    prefix (site, stream) is), and only the outbox figures are read out of the body, by the
    database: the per-feature counters are the bulk of a snapshot.
    """
    names = list(sites)
    body = telemetry.c.body
    out: dict[str, SnapshotHead] = {}
    for start in range(0, len(names), _SITES_PER_QUERY):
        chunk = names[start : start + _SITES_PER_QUERY]
        # A VALUES list names its column column1 on SQLite and PostgreSQL alike.
        values = ", ".join(f"(:site_{i})" for i in range(len(chunk)))
        listed = (
            sa.text(f"SELECT column1 AS site FROM (VALUES {values}) AS v")  # only bind names
            .bindparams(**{f"site_{i}": site for i, site in enumerate(chunk)})
            .columns(site=sa.String)
            .subquery("listed")
        )
        older = telemetry.alias("older")
        newest = (
            sa.select(sa.func.max(older.c.seq))
            .where(older.c.site == listed.c.site, older.c.stream == METRICS_STREAM)
            .scalar_subquery()
        )
        heads = sa.select(listed.c.site, newest.label("seq")).subquery("heads")
        rows = conn.execute(
            sa.select(
                telemetry.c.site,
                telemetry.c.ts,
                telemetry.c.received_at,
                body["outbox"].label("outbox"),  # a small object: one extraction, not two
                body["outbox_oldest_ts"].as_float().label("oldest"),
            )
            .join(heads, sa.and_(telemetry.c.site == heads.c.site, telemetry.c.seq == heads.c.seq))
            .where(telemetry.c.stream == METRICS_STREAM, telemetry.c.kind == SNAPSHOT_KIND)
        ).all()
        for r in rows:
            age = max(0.0, r.ts - r.oldest) if r.oldest is not None else None
            outbox = r.outbox if isinstance(r.outbox, dict) else {}
            depth = _int(outbox.get("depth_events"))
            point = OutboxPoint(ts=r.ts, depth_events=depth, oldest_unsent_age_s=age)
            out[r.site] = SnapshotHead(
                r.ts, r.received_at, point, _int(outbox.get("dropped_events"))
            )
    return out


def service_points(snapshots: list[Snapshot]) -> dict[str, list[ServicePoint]]:
    """{feature: one point per interval between consecutive snapshots}, oldest first."""
    points: dict[str, list[ServicePoint]] = {}
    empty = FeatureFigures()
    for before, after in itertools.pairwise(snapshots):
        dt = after.ts - before.ts
        if dt <= 0:
            continue
        for name, now in after.features.items():
            was = before.features.get(name, empty)
            requests = now.requests - was.requests
            escalations = now.escalations - was.escalations
            errors = now.errors - was.errors
            misses = now.deadline_misses - was.deadline_misses
            if min(requests, escalations, errors, misses) < 0:
                continue  # the agent restarted within this interval
            p50, p99 = _busiest_percentiles(was, now)
            points.setdefault(name, []).append(
                ServicePoint.model_construct(  # computed here: valid by construction
                    ts=after.ts,
                    requests_per_s=requests / dt,
                    p50_ms=p50,
                    p99_ms=p99,
                    escalated_share=escalations / requests if requests else None,
                    deadline_misses=misses,
                    errors=errors,
                )
            )
    return points


def answer_rate(snapshots: list[Snapshot]) -> float:
    """Answers per second over the last interval, all features together (0: unknown)."""
    points = service_points(snapshots[-2:]).values()
    return sum((pts[-1].requests_per_s or 0.0) for pts in points)


def outbox_now(
    head: SnapshotHead | None, now: float, stale_s: float, rate: Callable[[], float]
) -> OutboxNow:
    """The outbox as last reported; estimated when the newest snapshot is over `stale_s` old.

    `rate` gives the site's last measured answers per second (only asked when estimating).
    """
    if head is None:
        return OutboxNow(
            depth_events=None, oldest_unsent_age_s=None, dropped_events=None, estimated=False
        )
    point = head.outbox
    silent_s = max(0.0, now - head.ts)
    if silent_s <= stale_s:
        return OutboxNow(
            depth_events=point.depth_events,
            oldest_unsent_age_s=point.oldest_unsent_age_s,
            dropped_events=head.dropped_events,
            estimated=False,
        )
    # The newest snapshot is old: the site is offline, or back but still sending its backlog
    # (status reports go straight to the cloud, snapshots queue behind the outbox). Every
    # answer given since is one more event in the outbox.
    return OutboxNow(
        depth_events=point.depth_events + round(rate() * silent_s),
        oldest_unsent_age_s=(point.oldest_unsent_age_s or 0.0) + silent_s,
        dropped_events=head.dropped_events,
        estimated=True,
    )


def _busiest_percentiles(was: FeatureFigures, now: FeatureFigures) -> tuple[float | None, ...]:
    """p50 and p99 of the version that served the most of this interval (each version's recent
    window: a rollout's new version shows its own latency at once)."""
    best: tuple[int, float | None, float | None] | None = None
    best_growth = -1
    for key, figures in now.versions.items():
        growth = figures[0] - was.versions.get(key, (0, None, None))[0]
        if growth > best_growth:
            best, best_growth = figures, growth
    return (None, None) if best is None else (best[1], best[2])


# Exact types, not isinstance: a JSON true is not a count (and this runs ~10^5 times a call).
def _int(value: Any) -> int:
    kind = type(value)
    return value if kind is int else int(value) if kind is float else 0


def _float(value: Any) -> float | None:  # as `_int`
    kind = type(value)
    return value if kind is float else float(value) if kind is int else None
