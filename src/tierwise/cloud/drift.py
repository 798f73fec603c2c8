"""Drift in the cloud: has a site's stream moved away from what its edge model was checked on?

Sites send `feedback.summary` events (edge/feedback.py): per feature, counts of their inputs
in the package's drift bins and of the edge model's top probability — no raw value. When such
events arrive, the cloud sums a feature's latest summaries for the package version and
variant the site runs, newest first, until `WINDOW_ROWS` rows (or `WINDOW_S` seconds back),
and tests every input column and the confidence against the package's reference
(rules/drift.py: population stability index above a chi-square chance floor). The newest
verdict per site and feature is kept in `drift_status`, with the column that moved most, its
statistic and the threshold it had to pass; a change of verdict is logged, counted in
/metrics, and readable at `GET /v1/drift`.

The window is read back from the telemetry table rather than kept in the process, so any
replica may judge any batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from tierwise.cloud.auth import Admin, SiteOrAdmin
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.db import Database, drift_status, packages, telemetry
from tierwise.cloud.params import SitePath
from tierwise.package.manifest import DriftReference
from tierwise.rules.drift import ColumnShift, shifts_of_counts
from tierwise.wire import FEEDBACK_KIND, TelemetryEvent

log = logging.getLogger(__name__)

WINDOW_ROWS = 500  # rows a verdict is made on, at most: the newest summaries' sum
WINDOW_S = 300.0  # and summaries no older than this, before the newest
MIN_ROWS = 100  # fewer rows than this: no verdict yet
MAX_CACHED_REFERENCES = 256  # package versions whose reference a process keeps
RECENT_SUMMARIES = 100  # read back per check: every feature of the site, a window each

router = APIRouter(tags=["drift"])
Context = Annotated[CloudContext, Depends(get_context)]


class DriftView(BaseModel):
    """The newest drift verdict for one feature at one site."""

    site: str
    feature: str
    package: str
    version: int
    variant: str
    drifted: bool
    column: str  # the column that moved most: "x17" (input column 17) or "confidence"
    psi: float
    threshold: float
    columns_over: int  # columns whose PSI passed their threshold
    rows: int  # rows the verdict was made on
    since: float  # when the verdict last changed (cloud clock)
    checked_at: float


@dataclass(frozen=True)
class Verdict:
    shifts: list[ColumnShift]
    rows: int

    @property
    def worst(self) -> ColumnShift:
        return max(self.shifts, key=lambda s: s.psi / s.threshold)

    @property
    def drifted(self) -> bool:
        return any(s.alarm for s in self.shifts)


def judge(reference: DriftReference, summaries: Sequence[dict[str, Any]]) -> Verdict:
    """Test the summed counts of `summaries` (one feature, one package variant) against the
    package's reference: every input column, then the confidence."""
    rows = sum(int(s["rows"]) for s in summaries)
    inputs = [
        np.sum([s["inputs"][j] for s in summaries], axis=0) for j in range(len(reference.counts))
    ]
    confidence = np.sum([s["confidence"] for s in summaries], axis=0)
    return Verdict(shifts_of_counts(reference, inputs, confidence, summaries[0]["variant"]), rows)


def observe(ctx: CloudContext, site: str, events: Sequence[TelemetryEvent]) -> None:
    """After a telemetry batch is stored: judge every feature it brought feedback for."""
    feedback = [e for e in events if e.kind == FEEDBACK_KIND]
    if not feedback:
        return
    features = {str(e.body.get("feature")) for e in feedback}
    recent = [b for stream in {e.stream for e in feedback} for b in _recent(ctx.db, site, stream)]
    recent.sort(key=lambda b: -b["_ts"])
    for feature in sorted(features):
        mine = [b for b in recent if b.get("feature") == feature]
        if mine:
            _check(ctx, site, feature, mine)


def _recent(db: Database, site: str, stream: str) -> list[dict[str, Any]]:
    """The newest feedback summaries of a site's stream, each with its event time: walked
    back by seq (the primary key), keeping only summaries — a snapshot's large body is
    neither sent by the database nor decoded here."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(telemetry.c.ts, telemetry.c.body)
            .where(
                telemetry.c.site == site,
                telemetry.c.stream == stream,
                telemetry.c.kind == FEEDBACK_KIND,
            )
            .order_by(telemetry.c.seq.desc())
            .limit(RECENT_SUMMARIES)
        ).all()
    return [dict(r.body, _ts=r.ts) for r in rows]


def _window(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest summaries of the newest summary's package variant, up to the window."""
    newest = summaries[0]
    key = (newest["package"], newest["version"], newest["variant"])
    window: list[dict[str, Any]] = []
    rows = 0
    for s in summaries:
        if (s["package"], s["version"], s["variant"]) != key:
            continue
        if newest["_ts"] - s["_ts"] > WINDOW_S or rows >= WINDOW_ROWS:
            break
        window.append(s)
        rows += int(s["rows"])
    return window


def _reference(ctx: CloudContext, package: str, version: int) -> DriftReference | None:
    """The package version's reference, read and validated once per process (a registered
    version never changes); a version not registered (yet) is not remembered."""
    key = (package, version)
    if key in ctx.drift_references:
        cached: DriftReference | None = ctx.drift_references[key]
        return cached
    with ctx.db.read() as conn:
        manifest = conn.execute(
            sa.select(packages.c.manifest).where(
                packages.c.name == package, packages.c.version == version
            )
        ).scalar()
    if manifest is None:
        return None
    drift = manifest.get("drift")
    reference = None if drift is None else DriftReference.model_validate(drift)
    if len(ctx.drift_references) >= MAX_CACHED_REFERENCES:
        ctx.drift_references.clear()
    ctx.drift_references[key] = reference
    return reference


def _check(ctx: CloudContext, site: str, feature: str, summaries: list[dict[str, Any]]) -> None:
    window = _window(summaries)
    newest = window[0]
    reference = _reference(ctx, newest["package"], int(newest["version"]))
    if reference is None or sum(int(s["rows"]) for s in window) < MIN_ROWS:
        return
    try:
        verdict = judge(reference, window)
    except (ValueError, IndexError, KeyError) as exc:  # a summary that does not fit its package
        log.warning("drift %s/%s: feedback does not fit %s: %s", site, feature, newest, exc)
        return
    now = ctx.clock.now()
    worst = verdict.worst
    values = {
        "package": newest["package"],
        "version": int(newest["version"]),
        "variant": newest["variant"],
        "drifted": verdict.drifted,
        "column": worst.column,
        "psi": worst.psi,
        "threshold": worst.threshold,
        "columns_over": sum(s.alarm for s in verdict.shifts),
        "rows": verdict.rows,
        "checked_at": now,
    }
    key = (drift_status.c.site == site) & (drift_status.c.feature == feature)
    with ctx.db.write() as conn:
        before = conn.execute(sa.select(drift_status.c.drifted).where(key)).scalar()
        changed = before is None or bool(before) != verdict.drifted
        if before is None:
            conn.execute(
                drift_status.insert().values(site=site, feature=feature, since=now, **values)
            )
        else:
            extra = {"since": now} if changed else {}
            conn.execute(drift_status.update().where(key).values(**values, **extra))
    ctx.metrics.drift.labels(site, feature).set(int(verdict.drifted))
    if changed and (verdict.drifted or before is not None):
        ctx.metrics.drift_changes.labels("detected" if verdict.drifted else "cleared").inc()
        log.warning(
            "drift %s at %s/%s: %s PSI %.3f (threshold %.3f), %d columns over, %d rows",
            "detected" if verdict.drifted else "cleared",
            site,
            feature,
            worst.column,
            worst.psi,
            worst.threshold,
            values["columns_over"],
            verdict.rows,
        )


def drift_views(db: Database, site: str | None = None) -> list[DriftView]:
    query = sa.select(drift_status).order_by(drift_status.c.site, drift_status.c.feature)
    if site is not None:
        query = query.where(drift_status.c.site == site)
    with db.read() as conn:
        rows = conn.execute(query).mappings().all()
    return [DriftView.model_validate(dict(r)) for r in rows]


@router.get("/v1/drift", summary="The newest drift verdict of every site and feature")
def get_drift(ctx: Context, _admin: Admin) -> list[DriftView]:
    return drift_views(ctx.db)


@router.get(
    "/v1/sites/{site}/drift",
    summary="The newest drift verdict of each feature of one site",
    responses={401: {}, 403: {}},
)
def get_site_drift(site: SitePath, ctx: Context, _caller: SiteOrAdmin) -> list[DriftView]:
    return drift_views(ctx.db, site)
