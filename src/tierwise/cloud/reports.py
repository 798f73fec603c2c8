"""The endpoint sites report their status to; each report may move a rollout along."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tierwise.cloud.auth import SiteItself
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.deployments import deployment_for
from tierwise.cloud.params import SitePath
from tierwise.cloud.rollout import advance_active
from tierwise.cloud.status import record_status
from tierwise.wire import SiteStatus, StatusAck

router = APIRouter(tags=["deployments"])
Context = Annotated[CloudContext, Depends(get_context)]


@router.post(
    "/v1/sites/{site}/status",
    summary="A site reports installed versions, health and counters per feature",
    responses={401: {}, 403: {}, 413: {}},
)
def post_status(site: SitePath, body: SiteStatus, ctx: Context, _caller: SiteItself) -> StatusAck:
    """Store the report, advance running rollouts, and return the deployment etag to compare."""
    now = ctx.clock.now()
    record_status(ctx.db, site, body, now)
    ctx.metrics.status_reports.labels(site).inc()
    ctx.metrics.site_last_seen.labels(site).set(now)
    # A canary's report is what promotes or rolls back its rollout: judge it right away.
    for rollout in advance_active(ctx.db, now):
        ctx.metrics.rollout_transitions.labels(rollout.state).inc()
    return StatusAck(etag=deployment_for(ctx.db, site).etag)
