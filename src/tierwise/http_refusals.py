"""How a tierwise web app answers a refused request: `{"detail": ...}` with the refusal's status.

The cloud service and the edge agent's device API both install this, so their own logic
raises `RequestRefusedError`s and stays free of any web framework, while clients get the
body FastAPI gives its own HTTP errors.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tierwise.errors import RequestRefusedError


def answer_refusals(app: FastAPI) -> None:
    """Answer every `RequestRefusedError` raised while handling a request of `app`."""

    @app.exception_handler(RequestRefusedError)
    async def _refused(_request: Request, exc: RequestRefusedError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)
