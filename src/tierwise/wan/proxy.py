"""A TCP proxy on loopback that makes a perfect wire behave like a WAN: delay, loss, outages.

This kernel has no `tc netem`, so the impairments are applied in user space, per chunk of
bytes read from one side and written to the other. Order within a direction is kept, as TCP
keeps it: a chunk is delivered at `max(previous delivery, arrival + delay)`. A request and
the response that follows share one sampled round trip, half each way, so an HTTP exchange
sees exactly the configured RTT distribution. See `conditions.py` for loss and outage modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from tierwise.wan.capture import DOWN, UP, CaptureWriter
from tierwise.wan.conditions import LossMode, OutageMode, WanConditions

log = logging.getLogger(__name__)

CHUNK_BYTES = 65536
OUTAGE_POLL_S = 0.005  # how often held bytes look whether the link is back
_EOF = b""


@dataclass
class ProxyStats:
    """What the proxy did to the traffic since it started."""

    connections: int = 0
    refused: int = 0  # connections reset because the link was down (REFUSE mode)
    resets: int = 0  # connections reset by a loss (RESET mode) or an outage's start
    chunks_up: int = 0
    chunks_down: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    stalls: int = 0  # chunks delayed by an emulated retransmission
    held: int = 0  # chunks held back by an outage (BLACKHOLE mode)


class _Connection:
    """One client connection and its upstream twin, with a delivery queue per direction."""

    def __init__(
        self,
        proxy: WanProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.up_reader, self.up_writer = upstream
        self.pending_down_delay: float | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.number = proxy.stats.connections  # names the connection in a capture

    async def run(self) -> None:
        up: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        down: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.tasks = [
            asyncio.create_task(self._pump(self.client_reader, up, upstream=True)),
            asyncio.create_task(self._pump(self.up_reader, down, upstream=False)),
            asyncio.create_task(self._deliver(up, self.up_writer, UP)),
            asyncio.create_task(self._deliver(down, self.client_writer, DOWN)),
        ]
        try:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        finally:
            self.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        queue: asyncio.Queue[tuple[float, bytes]],
        upstream: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        cond, rng, stats = self.proxy.conditions, self.proxy.rng, self.proxy.stats
        last = 0.0
        while True:
            try:
                chunk = await reader.read(CHUNK_BYTES)
            except (ConnectionError, OSError):
                self.abort()  # the sender reset: what it had not delivered is gone
                return
            if not chunk:
                queue.put_nowait((last, _EOF))
                return
            if upstream:
                rtt = cond.sample_rtt(rng)
                self.pending_down_delay = rtt / 2
                delay = rtt / 2
                stats.chunks_up += 1
                stats.bytes_up += len(chunk)
            else:
                pending = self.pending_down_delay
                delay = pending if pending is not None else cond.sample_rtt(rng) / 2
                stats.chunks_down += 1
                stats.bytes_down += len(chunk)
            if cond.loss > 0:
                if cond.loss_mode is LossMode.RESET and rng.random() < cond.loss:
                    stats.resets += 1
                    self.abort()
                    return
                if cond.loss_mode is LossMode.STALL:
                    extra = cond.sample_retransmit_delay(rng)
                    if extra > 0:
                        stats.stalls += 1
                        delay += extra
            last = max(last, loop.time() + delay)
            queue.put_nowait((last, chunk))

    async def _deliver(
        self,
        queue: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        direction: bytes,
    ) -> None:
        loop = asyncio.get_running_loop()
        capture = self.proxy.capture  # None unless auditing: one test per chunk
        while True:
            at, chunk = await queue.get()
            wait = at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.proxy.is_down():
                self.proxy.stats.held += 1
                while self.proxy.is_down():
                    await asyncio.sleep(OUTAGE_POLL_S)
            try:
                if chunk is _EOF or not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                if capture is not None:
                    capture.record(self.number, direction, chunk)
                writer.write(chunk)
                await writer.drain()
            except (ConnectionError, OSError, RuntimeError):
                # The receiver is gone. Bytes still queued the other way may matter (a late
                # request reaching the server), so only this direction ends.
                return

    def abort(self) -> None:
        for writer in (self.client_writer, self.up_writer):
            writer.transport.abort()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    def close(self) -> None:
        for writer in (self.client_writer, self.up_writer):
            writer.close()


class WanProxy:
    """Listens on loopback and forwards to `target`, impaired by `conditions`.

    Use inside a running event loop (`await start()` / `await close()`), or from synchronous
    code through `ProxyThread`. `set_down(True)` starts an outage by hand; scheduled outages
    count from `start()`. With `capture`, every chunk it delivers is appended to that file
    (`tierwise.wan.capture`), for audits of what crossed; `close()` closes the file.
    """

    def __init__(
        self,
        target: tuple[str, int],
        conditions: WanConditions,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        seed: int | None = None,
        capture: Path | None = None,
    ) -> None:
        self.target = target
        self.conditions = conditions
        self.listen = listen
        self.rng = random.Random(seed)
        self.stats = ProxyStats()
        self._manual_down = False
        self._started_at = 0.0
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._watcher: asyncio.Task[None] | None = None
        self.capture = CaptureWriter(capture) if capture is not None else None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self.listen[0]}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._started_at = loop.time()
        self._server = await asyncio.start_server(self._accept, *self.listen)
        if self.conditions.outage_mode is OutageMode.REFUSE:
            self._watcher = asyncio.create_task(self._reset_during_outages())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        if self.capture is not None:
            self.capture.close()

    def set_down(self, down: bool) -> None:
        """Start (True) or end (False) an outage by hand, on top of the schedule."""
        self._manual_down = down

    def elapsed(self) -> float:
        return asyncio.get_running_loop().time() - self._started_at

    def is_down(self) -> bool:
        return self._manual_down or self.conditions.scheduled_outage(self.elapsed())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self.is_down() and self.conditions.outage_mode is OutageMode.REFUSE:
            self.stats.refused += 1
            writer.transport.abort()
            return
        try:
            upstream = await asyncio.open_connection(*self.target)
        except OSError as exc:
            log.debug("upstream %s unreachable: %s", self.target, exc)
            writer.transport.abort()
            return
        conn = _Connection(self, (reader, writer), upstream)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)

    async def _reset_during_outages(self) -> None:
        while True:
            if self.is_down() and self._connections:
                for conn in list(self._connections):
                    self.stats.resets += 1
                    conn.abort()
            await asyncio.sleep(OUTAGE_POLL_S)
