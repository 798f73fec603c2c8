"""Refuse request bodies above a size limit with 413, without ever buffering them whole.

Two checks, because a client may or may not announce the size: a Content-Length above
the limit is refused before one byte is read; a chunked body is counted as it streams in
and refused at the first chunk that crosses the limit. Package uploads get their own,
larger limit (a model archive is bigger than a telemetry batch).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tierwise.errors import RequestRefusedError


class BodyTooLargeError(HTTPException, RequestRefusedError):
    """Raised from `receive` mid-stream. Also an HTTPException: FastAPI re-raises those from
    body reading (anything else becomes a 400). HTTPException comes first so that its
    `__init__` sets `detail`; it does not call on to `RequestRefusedError`'s."""

    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(self.status, f"request body larger than {limit} bytes")
        self.limit = limit


class BodySizeLimit:
    """ASGI middleware: 413 for bodies above `limit_for(path)` bytes."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        announced = _content_length(scope)
        if announced is not None and announced > limit:
            await _send_413(send, limit)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            # Reached only when the app read the body outside FastAPI's own handling.
            if response_started:
                raise
            await _send_413(send, limit)


def _content_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def header(scope: Scope, wanted: bytes) -> bytes | None:
    """The first value of header `wanted` (lower case) in an HTTP scope, or None."""
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


async def _send_413(send: Send, limit: int) -> None:
    # Close the connection: the rest of the body may still be on its way.
    await send_refusal(send, 413, f"request body larger than {limit} bytes", close=True)


async def send_refusal(send: Send, status: int, detail: str, close: bool = False) -> None:
    """A `{"detail": ...}` JSON answer, sent from ASGI middleware (outside FastAPI)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
