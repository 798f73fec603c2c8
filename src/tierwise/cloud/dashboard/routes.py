"""The dashboard's JSON endpoints (documented in the OpenAPI, usable by any client) and the page.

The page itself is static: HTML, JS and CSS shipped in this package, served at /dashboard
without any token (it holds no data); everything it shows it reads from the endpoints here
with the token the operator types in, sent as a bearer header, never in a URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from tierwise.cloud.auth import Admin, AnyCaller, SiteOrAdmin
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.dashboard.cost import CostView, PlanStored, UploadedPlan, cost_view, store_plan
from tierwise.cloud.dashboard.fleet import fleet_view
from tierwise.cloud.dashboard.live import site_live
from tierwise.cloud.dashboard.views import Fleet, SiteLive
from tierwise.cloud.params import SitePath

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_POINTS = 120
MAX_POINTS = 1_000
# The page loads nothing from elsewhere: a fleet's operator may be offline, and a page that
# can only talk to its own origin cannot leak the token to another one.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter(tags=["dashboard"])
Context = Annotated[CloudContext, Depends(get_context)]


@router.get(
    "/v1/fleet",
    summary="Every site the token may see: online, versions, outbox; and the rollouts",
    response_model=Fleet,
    responses={401: {}},
)
def get_fleet(ctx: Context, caller: AnyCaller) -> Response:
    with ctx.db.read() as conn:
        fleet = fleet_view(conn, caller, ctx.clock.now(), ctx.settings.site_offline_after_s)
    return _json(fleet)


@router.put(
    "/v1/plan",
    summary="Upload the plan the fleet runs (what `tierwise plan --json` writes), for cost",
    response_model=PlanStored,
    responses={401: {}, 403: {}, 422: {}},
)
def put_plan(body: UploadedPlan, ctx: Context, _admin: Admin) -> PlanStored:
    return store_plan(ctx.db, body, ctx.clock.now())


@router.get(
    "/v1/cost",
    summary="$/month per strategy: the plan's, and the same at the traffic measured now",
    response_model=CostView,
    responses={401: {}, 403: {}},
)
def get_cost(ctx: Context, _admin: Admin) -> Response:
    with ctx.db.read() as conn:
        return _json(cost_view(conn))


@router.get(
    "/v1/sites/{site}/live",
    summary="A site's recent service per feature, plan checks and outbox, as chart series",
    response_model=SiteLive,
    responses={401: {}, 403: {}},
)
def get_site_live(
    site: SitePath,
    ctx: Context,
    _caller: SiteOrAdmin,
    points: Annotated[
        int, Query(ge=1, le=MAX_POINTS, description="intervals between metrics snapshots")
    ] = DEFAULT_POINTS,
) -> Response:
    with ctx.db.read() as conn:
        live = site_live(conn, site, ctx.clock.now(), ctx.settings.site_offline_after_s, points)
    return _json(live)


def _json(view: BaseModel) -> Response:
    # Built and validated once here: a returned model would be dumped, validated and dumped
    # again by FastAPI, doubling the time of a fleet-sized answer. `response_model` documents it.
    return Response(view.model_dump_json(), media_type="application/json")


def _page() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


@router.get("/dashboard", include_in_schema=False)
def dashboard_page() -> FileResponse:
    return _page()


@router.get("/dashboard/", include_in_schema=False)
def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard")


static_files = StaticFiles(directory=STATIC_DIR)
