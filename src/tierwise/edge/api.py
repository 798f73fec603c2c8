"""The device-facing HTTP API of the agent: predict, health, metrics and state, on loopback or LAN.

    POST /v1/predict/{feature}  {"inputs": [[...], ...], "labels": [..]?, "stream": "..."?}
    GET  /healthz               200 while serving, 503 otherwise
    GET  /metrics               Prometheus text
    GET  /v1/state              lifecycle, installed versions, outbox, RTT, uploads

Every answer says which model answered (`answered_by`, `model`, `version`), whether it was
`degraded`, and the `event_seq` under which it is recorded in the durable outbox — given
only once that record is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tierwise.edge.agent import EdgeAgent
from tierwise.edge.lifecycle import DeviceAdapter
from tierwise.http_refusals import answer_refusals
from tierwise.rules.clock import Clock
from tierwise.wire import PredictRequest, PredictResponse

FeatureName = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


ARRIVED = "tierwise.arrived"  # ASGI scope key: clock time the request reached the app


class StampArrival:
    """ASGI middleware noting when a request reached the app, before its body is read and
    validated: the deadline counts from there, so time spent queued behind other requests
    (a burst, a busy moment) is taken from the cloud's share of the budget, not added to it."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[ARRIVED] = self.clock.now()
        await self.app(scope, receive, send)


def create_app(agent: EdgeAgent, adapters: Sequence[DeviceAdapter] = ()) -> FastAPI:
    """The FastAPI app serving `agent`; the agent's lifecycle follows the app's, and so do
    the other ways devices reach it (`adapters`, e.g. MQTT): started after the agent,
    stopped before it."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await agent.start()
        started: list[DeviceAdapter] = []
        try:
            for adapter in adapters:
                await adapter.start()
                started.append(adapter)
            yield
        finally:
            for adapter in reversed(started):
                await adapter.stop()
            await agent.stop()

    app = FastAPI(
        title="tierwise edge agent",
        summary="Answers devices at the edge; escalates hard cases to the cloud in time.",
        version="1",
        lifespan=lifespan,
        # No route ends in "/": a device posting to `.../predict/x/` is told 404, not sent a
        # 307 to a path it did not ask for (found by tests/edge/test_api_fuzz.py, feature "0/")
        redirect_slashes=False,
    )
    app.add_middleware(StampArrival, clock=agent.clock)
    answer_refusals(app)  # the agent refuses with 404, 422 and 503 (`RequestRefusedError`s)

    @app.post(
        "/v1/predict/{feature}",
        response_model=PredictResponse,
        responses={404: {}, 422: {}, 503: {}},
        summary="Answer a batch of input rows for a feature",
    )
    async def predict(feature: FeatureName, body: PredictRequest, request: Request) -> Response:
        answer = await agent.predict(feature, body, arrived=request.scope.get(ARRIVED))
        # Serialized here, once: FastAPI would validate the model again before dumping it.
        return Response(answer.model_dump_json(), media_type="application/json")

    @app.get("/healthz", summary="200 while serving devices, 503 otherwise")
    async def healthz() -> JSONResponse:
        state = agent.lifecycle.state
        return JSONResponse({"state": state.value}, status_code=200 if agent.serving else 503)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text format")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(agent.prometheus(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/state", summary="Lifecycle, versions, outbox, observed RTT, uploads")
    async def state() -> dict[str, Any]:
        return agent.state_view()

    return app
