"""The fleet at a glance: every site the caller may see, what it runs, and the rollouts.

An operator sees every site the cloud knows (by token, assignment or report); a site's token
sees its own site only, and of the rollouts only those that touch it, with the other sites'
names left out.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from tierwise.cloud.auth import Principal
from tierwise.cloud.dashboard.snapshots import (
    answer_rate,
    outbox_now,
    recent_snapshots,
    snapshot_heads,
)
from tierwise.cloud.dashboard.views import Fleet, InstalledFeature, RolloutSummary, SiteSummary
from tierwise.cloud.db import assignments, rollouts, status_reports, tokens
from tierwise.wire import RolloutState

_NAMED = r"(?<![\w.-]){}(?![\w.-])"  # a site name, not a part of a longer name
MAX_ROLLOUTS = 20  # the newest; older ones stay readable at /v1/rollouts
STAGES = {
    RolloutState.CANARY: "canary",
    RolloutState.PROMOTING: "staged",
    RolloutState.DONE: "done",
    RolloutState.ROLLED_BACK: "rolled back",
}


def fleet_view(conn: sa.Connection, caller: Principal, now: float, offline_after_s: float) -> Fleet:
    """The fleet page's data for `caller`, read in one transaction."""
    sites = _visible_sites(conn, caller)
    only = None if caller.is_admin else sites  # an operator's rows need no site filter
    reported = _reported_features(conn, only)
    deployed = _deployed_features(conn, only)
    last_report = _last_reports(conn, only)
    heads = snapshot_heads(conn, sites)
    summaries = []
    for site in sites:
        head = heads.get(site)
        heard = [last_report.get(site), head.received_at if head is not None else None]
        contact = max([t for t in heard if t is not None], default=None)

        def rate(site: str = site) -> float:  # read only for a site that went silent
            return answer_rate(recent_snapshots(conn, site, 2))

        summaries.append(
            SiteSummary.model_construct(
                site=site,
                online=contact is not None and now - contact <= offline_after_s,
                last_contact=contact,
                outbox=outbox_now(head, now, offline_after_s, rate),
                features=_merge(deployed.get(site, {}), reported.get(site, {})),
            )
        )
    return Fleet(
        now=now,
        offline_after_s=offline_after_s,
        sites=summaries,
        rollouts=_rollouts(conn, caller),
    )


def last_contact(conn: sa.Connection, site: str, latest_snapshot_at: float | None) -> float | None:
    """When the site was last heard of: a status report, or its newest metrics snapshot."""
    heard = [_last_reports(conn, [site]).get(site), latest_snapshot_at]
    return max([t for t in heard if t is not None], default=None)


def _visible_sites(conn: sa.Connection, caller: Principal) -> list[str]:
    if not caller.is_admin:
        return [caller.site] if caller.site else []
    return fleet_sites(conn)


def fleet_sites(conn: sa.Connection) -> list[str]:
    """Every site the cloud knows: by token, assignment or status report."""
    found: set[str] = set()
    for column in (tokens.c.site, assignments.c.site, status_reports.c.site):
        found.update(
            conn.execute(sa.select(column).where(column.is_not(None)).distinct()).scalars()
        )
    return sorted(found)


def _of_sites(column: Any, sites: list[str] | None) -> list[Any]:
    """The WHERE clause keeping `sites` (None: every site)."""
    return [] if sites is None else [column.in_(sites)]


def _last_reports(conn: sa.Connection, sites: list[str] | None) -> dict[str, float]:
    rows = conn.execute(
        sa.select(status_reports.c.site, sa.func.max(status_reports.c.received_at))
        .where(*_of_sites(status_reports.c.site, sites))
        .group_by(status_reports.c.site)
    ).all()
    return {site: float(at) for site, at in rows}


def _deployed_features(
    conn: sa.Connection, sites: list[str] | None
) -> dict[str, dict[str, tuple[Any, ...]]]:
    """{site: {feature: (package, version, placement, deadline_ms)}}."""
    rows = conn.execute(
        sa.select(
            assignments.c.site,
            assignments.c.feature,
            assignments.c.package,
            assignments.c.version,
            assignments.c.placement,
            assignments.c.deadline_ms,
        ).where(*_of_sites(assignments.c.site, sites))
    ).all()
    out: dict[str, dict[str, tuple[Any, ...]]] = {}
    for site, feature, *rest in rows:  # plain tuples: a fleet has thousands
        out.setdefault(site, {})[feature] = tuple(rest)
    return out


def _reported_features(
    conn: sa.Connection, sites: list[str] | None
) -> dict[str, dict[str, tuple[Any, ...]]]:
    """{site: {feature: (package, version, healthy, detail)}} of the latest report per (site,
    feature); a healthy entry wins over a refusal sent with it."""
    rows = conn.execute(
        sa.select(
            status_reports.c.site,
            status_reports.c.feature,
            status_reports.c.package,
            status_reports.c.version,
            status_reports.c.healthy,
            status_reports.c.detail,
        )
        .where(*_of_sites(status_reports.c.site, sites))
        .order_by(status_reports.c.received_at, status_reports.c.healthy)
    ).all()
    out: dict[str, dict[str, tuple[Any, ...]]] = {}
    for site, feature, *rest in rows:
        out.setdefault(site, {})[feature] = tuple(rest)
    return out


def _merge(
    deployed: dict[str, tuple[Any, ...]], reported: dict[str, tuple[Any, ...]]
) -> list[InstalledFeature]:
    features = []
    nothing = (None, None, None, None)
    for name in sorted(deployed.keys() | reported.keys()):
        package, version, placement, deadline_ms = deployed.get(name, nothing)
        reported_package, reported_version, healthy, detail = reported.get(name, nothing)
        features.append(
            InstalledFeature(
                feature=name,
                package=str(package if package is not None else reported_package),
                deployed_version=version,
                installed_version=reported_version if healthy else None,
                healthy=None if healthy is None else bool(healthy),
                detail=detail or "",
                placement=placement,
                deadline_ms=deadline_ms,
            )
        )
    return features


def _rollouts(conn: sa.Connection, caller: Principal) -> list[RolloutSummary]:
    rows = conn.execute(sa.select(rollouts).order_by(rollouts.c.id.desc()).limit(MAX_ROLLOUTS))
    out = []
    for r in rows:
        canary, others, reason = list(r.canary_sites), list(r.other_sites), str(r.reason)
        if not caller.is_admin:
            if caller.site not in canary + others:
                continue
            for name in set(canary + others) - {caller.site}:
                reason = re.sub(
                    rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", "(another site)", reason
                )
            canary = [s for s in canary if s == caller.site]
            others = [s for s in others if s == caller.site]
        state = RolloutState(r.state)
        out.append(
            RolloutSummary(
                id=r.id,
                package=r.package,
                version=r.version,
                state=state,
                stage=STAGES[state],
                reason=reason,
                canary_sites=canary,
                other_sites=others,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
        )
    return out
