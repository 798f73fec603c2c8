"""Run an edge agent as a process: uvicorn (uvloop + httptools when installed) on a bound socket.

The socket is bound before the server starts so that port 0 works: the line
`edge agent SITE serving on http://HOST:PORT` is printed once the agent is serving — what a
supervisor (`tierwise up`, a test) waits for. SIGTERM or SIGINT moves the agent to DRAINING at
once (new requests get 503), then uvicorn finishes the requests in flight and the agent
flushes its outbox before the process exits.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn

from tierwise.edge.agent import EdgeAgent
from tierwise.edge.api import create_app
from tierwise.edge.lifecycle import AgentState, DeviceAdapter

STACK_ENV = "TIERWISE_EDGE_SERVER_STACK"  # e.g. "asyncio/h11", to compare (the benchmark does)
# Every loop/http pair uvicorn can serve the agent with; asyncio/h11 is what remains without
# the optional uvloop (not on Windows) and httptools.
SERVER_STACKS = ("asyncio/h11", "asyncio/httptools", "uvloop/h11", "uvloop/httptools")


def installed_server_stacks() -> list[str]:
    """The stacks of SERVER_STACKS whose modules are installed here."""
    return [
        stack
        for stack in SERVER_STACKS
        if all(importlib.util.find_spec(name) for name in stack.split("/"))
    ]


def fastest_server_stack() -> tuple[str, str]:
    """(loop, http) for uvicorn: uvloop and httptools when installed (measured faster in
    benchmarks/edge_overhead.py), unless $TIERWISE_EDGE_SERVER_STACK names another."""
    forced = os.environ.get(STACK_ENV, "")
    if forced:
        loop, _, http = forced.partition("/")
        return loop, http or "auto"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


class _Announcer:
    """Prints the lines a supervisor waits for: `edge agent SITE serving on URL` first, then
    what the adapters say (`... answering MQTT on ...`), held until then: an adapter may be
    ready before uvicorn is, and a supervisor reads the lines in that order."""

    def __init__(self, site: str) -> None:
        self.site = site
        self._serving = False
        self._held: list[str] = []

    def serving(self, url: str) -> None:
        print(f"edge agent {self.site} serving on {url}", flush=True)
        self._serving = True
        for what in self._held:
            self(what)

    def __call__(self, what: str) -> None:
        if self._serving:
            print(f"edge agent {self.site} {what}", flush=True)
        else:
            self._held.append(what)


class _AgentServer(uvicorn.Server):
    """uvicorn's server, telling the agent to drain the moment a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, agent: EdgeAgent, announce: _Announcer) -> None:
        super().__init__(config)
        self.agent = agent
        self.announce = announce

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, minus re-raising the signal afterwards: a drained agent exits 0."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.agent.lifecycle.state is AgentState.SERVING:
            self.agent.lifecycle.move(AgentState.DRAINING)
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:
            host, port = sockets[0].getsockname()[:2]
            self.announce.serving(f"http://{host}:{port}")


def bind(host: str, port: int) -> socket.socket:
    """The agent's listening socket, bound (not yet listening) to host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # whose proto says TCP, and accepted sockets inherit the listener's proto. With 0, plain
    # asyncio (no uvloop, e.g. on Windows) left Nagle on; uvicorn writes an answer's head and
    # body in two writes, the body waited for the device's delayed ACK: ~40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(agent: EdgeAgent, log_level: str = "warning") -> None:
    """Serve `agent` until a stop signal; returns after the graceful shutdown. With an MQTT
    broker in its settings, devices reach it over MQTT too (edge/mqtt.py), and the line
    `edge agent SITE answering MQTT on mqtt://HOST:PORT topic ...` follows once subscribed."""
    adapters: list[DeviceAdapter] = []
    announce = _Announcer(agent.settings.site)
    if agent.settings.mqtt_url is not None:
        from tierwise.edge.mqtt import mqtt_devices

        adapters.append(mqtt_devices(agent, announce))
    loop, http = fastest_server_stack()
    config = uvicorn.Config(
        create_app(agent, adapters),
        loop=loop,
        http=http,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=max(round(agent.settings.drain_timeout_s), 1),
        lifespan="on",
    )
    sock = bind(agent.settings.host, agent.settings.port)
    server = _AgentServer(config, agent, announce)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(4)
