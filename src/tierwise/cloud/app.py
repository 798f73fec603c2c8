"""The cloud service as a FastAPI app: `create_app(settings, clock)` wires every router together.

Middleware order, outermost first: the replica's name on every answer, HTTP metrics (so even
a 413 is counted), then the body size limit (so an oversized body is refused before any
handler reads it), then gzip request bodies inflated within the same limit (edge agents
compress telemetry). A
background ticker advances running rollouts, so a canary's bake time ends on time even
when no site happens to report. The ticker waits on the app's clock, and every timestamp the
cloud stores is read from it: the wall clock in service, a `VirtualClock` a test advances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import tierwise
from tierwise.cloud import (
    deployments,
    drift,
    field_feedback,
    registry,
    reports,
    rollout,
    telemetry,
)
from tierwise.cloud import inference as inference_routes
from tierwise.cloud.auth import authenticate, load_tokens_file
from tierwise.cloud.changes import DeploymentChanges
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.dashboard import routes as dashboard
from tierwise.cloud.db import open_database
from tierwise.cloud.decompress import GzipRequests
from tierwise.cloud.limits import BodySizeLimit
from tierwise.cloud.metrics import METRICS_CONTENT_TYPE, CloudMetrics, HttpMetrics
from tierwise.cloud.model_cache import ModelCache
from tierwise.cloud.settings import Settings
from tierwise.http_refusals import answer_refusals
from tierwise.rules.clock import Clock, WallClock

log = logging.getLogger(__name__)

PACKAGE_UPLOAD_PATH = "/v1/packages"
REPLICA_HEADER = "Tierwise-Replica"
MAX_REPORTED_ERRORS = 20


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The service for `settings`: opens (and creates) the database right away.

    `clock` tells the time in epoch seconds (default: the wall clock).
    """
    clock = clock or WallClock()
    trusted = _trusted_keys(settings)  # a bad key file fails the start, not each upload
    db = open_database(settings.database_url, settings.db_schema)
    if settings.tokens_file is not None:
        load_tokens_file(db, settings.tokens_file, clock.now())
    metrics = CloudMetrics()
    ctx = CloudContext(
        settings=settings,
        db=db,
        clock=clock,
        metrics=metrics,
        models=ModelCache(),
        changes=DeploymentChanges(db),
        trusted_keys=trusted,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(ctx.changes.start)
        ticker = asyncio.create_task(_advance_rollouts_forever(ctx))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await run_in_threadpool(ctx.changes.stop)
            db.dispose()

    app = FastAPI(
        title="tierwise cloud",
        version=tierwise.__version__,
        summary="Package registry, staged rollouts, cloud inference and telemetry for edge sites.",
        lifespan=lifespan,
    )
    app.state.cloud = ctx

    def limit_for(path: str) -> int:
        if path == PACKAGE_UPLOAD_PATH:
            return settings.max_package_bytes
        return settings.max_body_bytes

    # Inner to outer: inflate gzip bodies within the limit, after the wire bytes were bounded.
    app.add_middleware(GzipRequests, limit_for=limit_for)
    app.add_middleware(BodySizeLimit, limit_for=limit_for)
    app.add_middleware(HttpMetrics, metrics=metrics)
    app.add_middleware(ReplicaHeader, replica=settings.replica)  # added last = outermost

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes each bad input back: a 10,000-event batch, or a NaN that
        # JSON cannot even encode (a 500). Say where and what, not the input itself.
        errors = exc.errors()
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in errors[:MAX_REPORTED_ERRORS]
        ]
        if len(errors) > MAX_REPORTED_ERRORS:
            detail.append({"loc": [], "msg": f"... and {len(errors) - MAX_REPORTED_ERRORS} more"})
        return JSONResponse({"detail": detail}, status_code=422)

    answer_refusals(app)

    @app.get("/healthz", tags=["service"], summary="Liveness: no auth")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics (text format)",
        response_class=Response,
        responses={200: {"content": {METRICS_CONTENT_TYPE: {}}}, 401: {}, 403: {}},
    )
    def metrics_endpoint(
        request: Request, context: Annotated[CloudContext, Depends(get_context)]
    ) -> Response:
        if not context.settings.metrics_public:
            caller = authenticate(request, context)
            if not caller.is_admin:
                return JSONResponse({"detail": "/metrics needs an operator token"}, 403)
        return Response(context.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    for module in (
        registry,
        deployments,
        reports,
        rollout,
        telemetry,
        drift,
        field_feedback,
        inference_routes,
        dashboard,
    ):
        app.include_router(module.router)
    app.mount("/dashboard/static", dashboard.static_files, name="dashboard-static")
    return app


async def _advance_rollouts_forever(ctx: CloudContext) -> None:
    while True:
        await ctx.clock.wait_until(ctx.clock.deadline(ctx.settings.evaluate_interval_s))
        try:
            changed = await run_in_threadpool(rollout.advance_active, ctx.db, ctx.clock.now())
        except Exception:  # a database hiccup must not stop future rollouts from moving
            log.exception(
                "advancing rollouts failed; retrying in %g s", ctx.settings.evaluate_interval_s
            )
            continue
        for r in changed:
            ctx.metrics.rollout_transitions.labels(r.state).inc()
            log.info("rollout %d of %s v%d: %s (%s)", r.id, r.package, r.version, r.state, r.reason)


class ReplicaHeader:
    """ASGI middleware: every answer names the replica that gave it (`Tierwise-Replica`), so
    behind a load balancer an operator (and `tierwise up`'s live view) sees who answered."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER.lower().encode(), replica.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def naming_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, naming_send)


def _trusted_keys(settings: Settings) -> dict[str, Any]:
    if not settings.trusted_keys:
        return {}
    from tierwise.package.keys import load_trusted_keys

    return dict(load_trusted_keys(settings.trusted_keys))
