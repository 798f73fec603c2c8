"""Site status reports: what each site runs, whether it is healthy, and how it performs.

Reports are cumulative per (site, feature, version, since), so the cloud keeps only the
latest one of each and a resent report changes nothing. `canary_evidence` sums them into
what the rollout policies judge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from tierwise.cloud.db import Database, status_reports
from tierwise.wire import SiteStatus

_VALUES = [
    "package",
    "healthy",
    "detail",
    "requests",
    "errors",
    "escalations",
    "p50_ms",
    "p99_ms",
    "feedback_correct",
    "feedback_total",
    "received_at",
]


def record_status(db: Database, site: str, report: SiteStatus, now: float) -> None:
    """Keep the latest counters of every (feature, version, since) in the report, received `now`."""
    if not report.features:
        return
    rows = [
        {
            "site": site,
            "feature": f.feature,
            "version": f.version,
            "since": f.since,
            "package": f.package,
            "healthy": f.healthy,
            "detail": f.detail,
            **f.counters.model_dump(),
            "received_at": now,
        }
        for f in report.features
    ]
    # Two entries with the same key in one report: the last one wins, like a resend would.
    unique = list({(r["feature"], r["version"], r["since"]): r for r in rows}.values())
    with db.write() as conn:
        conn.execute(
            db.upsert(status_reports, ["site", "feature", "version", "since"], _VALUES), unique
        )


@dataclass
class CanaryEvidence:
    """Everything the canary sites said about one package version, summed."""

    sites: list[str]
    elapsed_s: float = 0.0
    reported_sites: set[str] = field(default_factory=set)
    unhealthy: dict[str, str] = field(default_factory=dict)  # site -> detail
    requests: int = 0
    errors: int = 0
    escalations: int = 0
    feedback_correct: int = 0
    feedback_total: int = 0
    p99_ms: float | None = None  # the worst p99 any canary reported

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def accuracy(self) -> float | None:
        return self.feedback_correct / self.feedback_total if self.feedback_total else None

    @property
    def missing_sites(self) -> list[str]:
        return [s for s in self.sites if s not in self.reported_sites]


def canary_evidence(
    conn: sa.Connection, sites: Iterable[str], package: str, version: int, since: float
) -> CanaryEvidence:
    """Sum what `sites` reported about `package` at `version` in reports received after `since`.

    Reports received before the rollout started cannot be about it, whatever they claim.
    """
    evidence = CanaryEvidence(sites=sorted(sites))
    rows = conn.execute(
        sa.select(status_reports).where(
            status_reports.c.site.in_(evidence.sites),
            status_reports.c.package == package,
            status_reports.c.version == version,
            status_reports.c.received_at >= since,
        )
    ).all()
    for r in rows:
        evidence.reported_sites.add(r.site)
        if not r.healthy:
            evidence.unhealthy[r.site] = r.detail or "failed its health probe"
        evidence.requests += r.requests
        evidence.errors += r.errors
        evidence.escalations += r.escalations
        evidence.feedback_correct += r.feedback_correct
        evidence.feedback_total += r.feedback_total
        if r.p99_ms is not None and r.requests:
            evidence.p99_ms = max(evidence.p99_ms or 0.0, r.p99_ms)
    return evidence
