"""A device's side of the local API: a bare HTTP/1.1 keep-alive client on asyncio streams.

Device simulators (`tierwise up`, load tests, benchmarks) run many devices in one process;
each request must cost far less CPU than the agent spends answering it, or the simulator
measures itself. A general client (httpx) costs about ten times more per request than this.

    device = DeviceConnection("http://127.0.0.1:8700")
    status, body = await device.post("/v1/predict/safety-stop", b'{"inputs": [[...]]}')
"""

from __future__ import annotations

import asyncio

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


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
    """One keep-alive connection to an agent; reconnects after an error."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        self.host, self.port = host, int(port)
        self._head = json_head(host)
        self._streams: Streams | None = None

    async def connect(self) -> None:
        """Open the connection now (a device keeps one open), not with the first request."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of a JSON POST; raises OSError or asyncio.IncompleteReadError when
        the agent is gone (the next call connects again)."""
        await self.connect()
        assert self._streams is not None
        try:
            return await exchange(self._streams, path, self._head, body)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
