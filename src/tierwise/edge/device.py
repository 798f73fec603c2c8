"""A device's side of the local API: a bare HTTP/1.1 keep-alive client on asyncio streams.

Device simulators (`tierwise up`, load tests, benchmarks) run many devices in one process;
each request must cost far less CPU than the agent spends answering it, or the simulator
measures itself. A general client (httpx) costs about ten times more per request than this.

    device = DeviceConnection("http://127.0.0.1:8700")
    status, body = await device.post("/v1/predict/safety-stop", b'{"inputs": [[...]]}')
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

# A connection idle this long is not reused: servers close idle keep-alive connections
# (uvicorn after 5 s), and a request written just as the server closes is lost with it.
IDLE_EXPIRY_S = 4.0


@dataclass
class KeptAlive:
    """An open connection and when it last finished a request."""

    streams: Streams
    idle_since: float = field(default_factory=time.monotonic)

    def reusable(self) -> bool:
        reader, writer = self.streams
        fresh = time.monotonic() - self.idle_since < IDLE_EXPIRY_S
        return fresh and not reader.at_eof() and not writer.is_closing()

    def close(self) -> None:
        self.streams[1].close()


async def post_kept_alive(
    kept: KeptAlive | None,
    connect: Callable[[], Awaitable[Streams]],
    path: str,
    head: bytes,
    body: bytes,
) -> tuple[KeptAlive, int, bytes]:
    """A JSON POST on `kept` when it is still usable, else on a new connection: the
    connection (to keep for the next request), the status and the body of the answer.

    The server may close an idle connection at the very moment a request is written to it;
    the request then meets an end of stream before any answer byte. Only on a reused
    connection, and only then, the request is sent once more on a new one: a server closing
    an idle connection has not read it. (A server that crashed after reading it looks the
    same; the request may then be answered twice, harmless for predictions, each of which
    is an event of its own.) Any other failure closes the connection and propagates.
    """
    if kept is not None and kept.reusable():
        try:
            return kept, *await _exchange_on(kept, path, head, body)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise  # an answer had begun: the request was read, do not send it twice
    elif kept is not None:
        kept.close()
    kept = KeptAlive(await connect())
    return kept, *await _exchange_on(kept, path, head, body)


async def _exchange_on(kept: KeptAlive, path: str, head: bytes, body: bytes) -> tuple[int, bytes]:
    """`exchange` on `kept`, closing it on any failure and marking it idle after success."""
    try:
        status, answer = await exchange(kept.streams, path, head, body)
    except BaseException:
        kept.close()
        raise
    kept.idle_since = time.monotonic()
    return status, answer


def json_head(host: str, headers: dict[str, str] | None = None) -> bytes:
    """The header lines of every POST to `host` (Content-Length is added per request)."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return f"Host: {host}\r\nContent-Type: application/json\r\n{extra}".encode()


async def exchange(streams: Streams, path: str, head: bytes, body: bytes) -> tuple[int, bytes]:
    """One JSON POST on an open keep-alive connection: (status, body) of the answer, which
    must carry a Content-Length (the agent's and the cloud's always do)."""
    reader, writer = streams
    writer.write(
        b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
        % (path.encode(), head, len(body), body)
    )
    answer_head = await reader.readuntil(b"\r\n\r\n")
    status = int(answer_head.split(b" ", 2)[1])
    length = 0
    for line in answer_head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


class DeviceConnection:
    """One keep-alive connection to an agent; reconnects after an error or a long idle."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        self.host, self.port = host, int(port)
        self._head = json_head(host)
        self._kept: KeptAlive | None = None

    async def connect(self) -> None:
        """Open the connection now (a device keeps one open), not with the first request."""
        if self._kept is None:
            self._kept = KeptAlive(await self._open())

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of a JSON POST; raises OSError or asyncio.IncompleteReadError when
        the agent is gone (the next call connects again)."""
        kept, self._kept = self._kept, None
        self._kept, status, answer = await post_kept_alive(kept, self._open, path, self._head, body)
        return status, answer

    def close(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    async def _open(self) -> Streams:
        return await asyncio.open_connection(self.host, self.port)
