"""What a retraining may learn from a site: its feedback summaries summed, and raw examples
only where the site sent them.

`GET /v1/sites/{site}/feedback/{feature}?since=T` (operator) sums the site's
`feedback.summary` events of one feature sent at or after `since` (the edge's wall clock) for
the newest package version and variant among them — bins belong to a version — into one
`FieldFeedback`: rows, counts per input column and of the confidence in that version's drift
bins. Integers only; `examples` holds raw rows solely from summaries the site marked `raw`
(its policy lets raw inputs reach the cloud, edge/feedback.py), each with the true label
when the device gave one and the cloud's answer.

The learner (tierwise.learn) rebases a retrained package's drift reference on these counts,
and a centralized retraining learns from the examples.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from tierwise.cloud.auth import Admin
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.db import Database, packages, telemetry
from tierwise.cloud.params import FeaturePath, SitePath
from tierwise.errors import NotFoundError
from tierwise.wire import FEEDBACK_KIND

router = APIRouter(tags=["learning"])
Context = Annotated[CloudContext, Depends(get_context)]


class FieldExample(BaseModel):
    """One raw hard row a site was allowed to send, with what is known of its class."""

    inputs: list[float]
    label: int | None = None  # the true class, when the device gave it
    cloud_label: int | None = None  # the cloud model's answer


class FieldFeedback(BaseModel):
    """A site's summaries of one feature since a time, summed (see the module docstring)."""

    site: str
    feature: str
    package: str
    version: int
    variant: str
    since: float
    summaries: int
    rows: int
    hard_rows: int
    cloud_answered: int
    cloud_agreed: int
    edges: list[list[float]]  # per input column: the drift bins' edges of `version`
    inputs: list[list[int]]  # per input column: rows per drift bin of `version`
    confidence: list[int]  # rows per confidence bin (the edge model of `version`)
    raw: bool  # whether any summary carried raw examples
    examples: list[FieldExample]


def field_feedback(db: Database, site: str, feature: str, since: float) -> FieldFeedback:
    """Sum the summaries (see the module docstring); NotFoundError when there are none."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(telemetry.c.body)
            .where(
                telemetry.c.site == site,
                telemetry.c.kind == FEEDBACK_KIND,
                telemetry.c.ts >= since,
            )
            .order_by(telemetry.c.ts, telemetry.c.seq)
        ).all()
        bodies = [r.body for r in rows if r.body.get("feature") == feature]
        if not bodies:
            raise NotFoundError(f"no feedback from {site} for {feature!r} since {since:g}")
        newest = bodies[-1]
        key = (newest["package"], newest["version"], newest["variant"])
        manifest = conn.execute(
            sa.select(packages.c.manifest).where(
                packages.c.name == key[0], packages.c.version == key[1]
            )
        ).scalar()
    drift = (manifest or {}).get("drift")
    if drift is None:
        raise NotFoundError(f"package {key[0]} v{key[1]} is not registered or has no drift bins")
    mine = [b for b in bodies if (b["package"], b["version"], b["variant"]) == key]
    width = max(len(c) for b in mine for c in b["inputs"])
    inputs = np.zeros((len(newest["inputs"]), width), np.int64)
    for b in mine:
        for j, counts in enumerate(b["inputs"]):
            inputs[j, : len(counts)] += counts
    used = [len(c) for c in newest["inputs"]]
    return FieldFeedback(
        site=site,
        feature=feature,
        package=key[0],
        version=int(key[1]),
        variant=key[2],
        since=since,
        summaries=len(mine),
        rows=sum(int(b["rows"]) for b in mine),
        hard_rows=sum(int(b["hard_rows"]) for b in mine),
        cloud_answered=sum(int(b["cloud_answered"]) for b in mine),
        cloud_agreed=sum(int(b["cloud_agreed"]) for b in mine),
        edges=drift["edges"],
        inputs=[[int(c) for c in inputs[j, :n]] for j, n in enumerate(used)],
        confidence=[int(c) for c in np.sum([b["confidence"] for b in mine], axis=0)],
        raw=any(b.get("raw") for b in mine),
        examples=[FieldExample.model_validate(e) for b in mine for e in b.get("examples") or []],
    )


@router.get(
    "/v1/sites/{site}/feedback/{feature}",
    summary="Operator: a site's feedback summaries of one feature since a time, summed",
    responses={401: {}, 403: {}, 404: {}},
)
def get_field_feedback(
    site: SitePath,
    feature: FeaturePath,
    ctx: Context,
    _admin: Admin,
    since: Annotated[float, Query(ge=0, le=1e11, description="edge wall-clock seconds")] = 0.0,
) -> FieldFeedback:
    return field_feedback(ctx.db, site, feature, since)
