"""Accept gzip-compressed request bodies (`Content-Encoding: gzip`), inflated within a bound.

Edge agents compress their telemetry batches: a batch of JSON events shrinks about tenfold,
and on a metered uplink that is most of what a site pays for. A compressed body is a
decompression bomb waiting to happen, so it is inflated with the same size limit the
uncompressed body would have had (a 413 past it, without inflating the rest), and only
then handed to the app as if it had arrived uncompressed. The compressed bytes on the wire
are bounded first by `BodySizeLimit`, which wraps this middleware.

- no `Content-Encoding`, or `identity`: untouched;
- `gzip`: inflated; a body that is not valid gzip is a 400 that says so;
- anything else: 415, naming the encodings this service accepts.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tierwise.cloud.limits import header, send_refusal
from tierwise.errors import RequestRefusedError

ACCEPTED = ("gzip", "identity")
# Inflating above this many compressed bytes runs on a worker thread, off the event loop.
THREAD_ABOVE_BYTES = 64 * 1024


class BadEncodingError(RequestRefusedError):
    """A body this service cannot inflate: an HTTP status (400, 413, 415) and what was wrong."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class GzipRequests:
    """ASGI middleware: inflate gzip request bodies, at most `limit_for(path)` bytes each."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        encoding = header(scope, b"content-encoding") if scope["type"] == "http" else None
        if encoding is None or encoding.strip().lower() in (b"", b"identity"):
            await self.app(scope, receive, send)
            return
        try:
            if encoding.strip().lower() != b"gzip":
                raise BadEncodingError(
                    415,
                    f"Content-Encoding {encoding.decode('latin-1')!r} is not supported: "
                    f"send one of {', '.join(ACCEPTED)}",
                )
            compressed = await _read_body(receive)
            limit = self.limit_for(scope["path"])
            if len(compressed) > THREAD_ABOVE_BYTES:
                body = await anyio.to_thread.run_sync(inflate, compressed, limit)
            else:
                body = inflate(compressed, limit)
        except BadEncodingError as exc:
            await send_refusal(send, exc.status, exc.detail)
            return
        await self.app(_as_plain(scope, len(body)), _replay(body, receive), send)


def inflate(compressed: bytes, limit: int) -> bytes:
    """The bytes of a gzip stream, refused (413) as soon as they would exceed `limit`."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(compressed, limit + 1)
    except zlib.error as exc:
        raise BadEncodingError(400, f"request body is not valid gzip: {exc}") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise BadEncodingError(413, f"request body larger than {limit} bytes once decompressed")
    if not inflater.eof:
        raise BadEncodingError(400, "request body is not valid gzip: the stream is truncated")
    if inflater.unused_data:
        raise BadEncodingError(400, "request body is not valid gzip: data after the gzip stream")
    return body


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise BadEncodingError(400, "request body incomplete: the client disconnected")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _as_plain(scope: Scope, length: int) -> Scope:
    """The scope as if the body had been sent uncompressed: no Content-Encoding, its length."""
    headers = [
        (name, value)
        for name, value in scope["headers"]
        if name not in (b"content-encoding", b"content-length", b"transfer-encoding")
    ]
    headers.append((b"content-length", str(length).encode()))
    return {**scope, "headers": headers}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the inflated body once, then defers to the real one (whose
    next message is the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
