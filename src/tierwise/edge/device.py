"""A device's side of the local API: a bare HTTP/1.1 keep-alive client on asyncio streams.

Device simulators (`tierwise up`, load tests, benchmarks) run many devices in one process;
each request must cost far less CPU than the agent spends answering it, or the simulator
measures itself. A general client (httpx) costs about ten times more per request than this.

    device = DeviceConnection("http://127.0.0.1:8700")
    status, body = await device.post("/v1/predict/safety-stop", b'{"inputs": [[...]]}')
"""

from __future__ import annotations

import asyncio


class DeviceConnection:
    """One keep-alive connection to an agent; reconnects after an error."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
        self.host, self.port = host, int(port)
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect(self) -> None:
        """Open the connection now (a device keeps one open), not with the first request."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of a JSON POST; raises OSError or asyncio.IncompleteReadError when
        the agent is gone (the next call connects again)."""
        await self.connect()
        assert self._streams is not None
        reader, writer = self._streams
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s"
                % (path.encode(), self.host.encode(), len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            return status, await reader.readexactly(length)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
