"""Telemetry from the sites: batched ingest, idempotent by (site, stream, seq), read in order.

An edge retries a batch whenever it is not sure the cloud got it, so the cloud must accept
the same event twice and keep it once. The primary key (site, stream, seq) does that, and
one executemany of `INSERT ... ON CONFLICT DO NOTHING` per batch stores the new events,
and its row count says how many were new: a 10,000-event batch is one bulk insert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic_core import to_json

from tierwise.cloud import drift
from tierwise.cloud.auth import SiteItself, SiteOrAdmin
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.db import Database, telemetry
from tierwise.cloud.params import NAME_PATTERN, SitePath
from tierwise.wire import (
    MAX_SEQ,
    MAX_TELEMETRY_BATCH,
    TelemetryAck,
    TelemetryBatch,
    TelemetryEvent,
    TelemetryPage,
)

DEFAULT_PAGE = 1_000

router = APIRouter(tags=["telemetry"])
Context = Annotated[CloudContext, Depends(get_context)]


def ingest(
    db: Database, site: str, events: Sequence[TelemetryEvent], received_at: float
) -> TelemetryAck:
    """Store the events the cloud does not have yet; count the others as duplicates."""
    unique: dict[tuple[str, int], TelemetryEvent] = {}
    for event in events:
        unique.setdefault((event.stream, event.seq), event)  # a batch may repeat itself
    # In the table's column order: site, stream, seq, ts, kind, body, received_at.
    rows = [
        (site, e.stream, e.seq, e.ts, e.kind, to_json(e.body).decode(), received_at)
        for e in unique.values()
    ]
    streams = sorted({e.stream for e in unique.values()})
    with db.write() as conn:
        accepted = db.bulk_insert_ignoring_duplicates(conn, telemetry, rows)
        high_water = _high_water(conn, site, streams)
    return TelemetryAck(accepted=accepted, duplicates=len(events) - accepted, high_water=high_water)


def read_stream(
    db: Database, site: str, stream: str, after: int, limit: int
) -> list[TelemetryEvent]:
    """Events of one stream with seq > after, in seq order, at most `limit`."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(
                telemetry.c.stream,
                telemetry.c.seq,
                telemetry.c.ts,
                telemetry.c.kind,
                telemetry.c.body,
            )
            .where(
                telemetry.c.site == site,
                telemetry.c.stream == stream,
                telemetry.c.seq > after,
            )
            .order_by(telemetry.c.seq)
            .limit(limit)
        ).all()
    return [
        TelemetryEvent(stream=r.stream, seq=r.seq, ts=r.ts, kind=r.kind, body=r.body) for r in rows
    ]


def stream_summary(db: Database, site: str) -> dict[str, dict[str, int]]:
    """For each stream of a site: how many events the cloud holds and the highest seq."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(
                telemetry.c.stream,
                sa.func.count().label("events"),
                sa.func.max(telemetry.c.seq).label("high_water"),
            )
            .where(telemetry.c.site == site)
            .group_by(telemetry.c.stream)
            .order_by(telemetry.c.stream)
        ).all()
    return {r.stream: {"events": r.events, "high_water": r.high_water} for r in rows}


def _high_water(conn: sa.Connection, site: str, streams: list[str]) -> dict[str, int]:
    if not streams:
        return {}
    rows = conn.execute(
        sa.select(telemetry.c.stream, sa.func.max(telemetry.c.seq))
        .where(telemetry.c.site == site, telemetry.c.stream.in_(streams))
        .group_by(telemetry.c.stream)
    ).all()
    return {stream: int(top) for stream, top in rows}


@router.post(
    "/v1/sites/{site}/telemetry",
    summary="Upload a batch of events (idempotent by stream and seq)",
    responses={401: {}, 403: {}, 413: {}},
)
def post_telemetry(
    site: SitePath, batch: TelemetryBatch, ctx: Context, _caller: SiteItself
) -> TelemetryAck:
    """Store a batch of events; events already stored count as duplicates."""
    ack = ingest(ctx.db, site, batch.events, ctx.clock.now())
    ctx.metrics.telemetry_events.labels(site, "accepted").inc(ack.accepted)
    ctx.metrics.telemetry_events.labels(site, "duplicate").inc(ack.duplicates)
    if ack.accepted:  # a batch sent again brings no new feedback
        drift.observe(ctx, site, batch.events)
    return ack


@router.get(
    "/v1/sites/{site}/telemetry",
    summary="Read one stream's events in seq order",
    responses={401: {}, 403: {}},
)
def get_telemetry(
    site: SitePath,
    ctx: Context,
    _caller: SiteOrAdmin,
    stream: Annotated[
        str, Query(min_length=1, max_length=128, pattern=NAME_PATTERN, description="the stream")
    ],
    after: Annotated[int, Query(ge=-1, le=MAX_SEQ, description="return seq > after")] = -1,
    limit: Annotated[int, Query(ge=1, le=MAX_TELEMETRY_BATCH)] = DEFAULT_PAGE,
) -> TelemetryPage:
    events = read_stream(ctx.db, site, stream, after, limit)
    next_after = events[-1].seq if len(events) == limit else None
    return TelemetryPage(site=site, stream=stream, events=events, next_after=next_after)


@router.get(
    "/v1/sites/{site}/streams",
    summary="Streams of a site with their event count and highest seq",
    responses={401: {}, 403: {}},
)
def get_streams(site: SitePath, ctx: Context, _caller: SiteOrAdmin) -> dict[str, dict[str, int]]:
    return stream_summary(ctx.db, site)
