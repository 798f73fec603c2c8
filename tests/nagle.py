"""Whether uvicorn answers with Nagle off on a socket tierwise bound: read off the connection.

uvicorn writes an answer's head and body in two writes; with Nagle on, the body waits for the
client's delayed ACK (~40 ms on Linux). The event loop decides whether an accepted socket has
TCP_NODELAY (uvloop: always; asyncio: only when the listening socket's proto is TCP), so the
check serves a real connection on the socket as given, on a given server stack.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

START_TIMEOUT_S = 10.0


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering every request with a 2-byte body (the connection stays open)."""
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def accepted_nodelay(sock: socket.socket, stack: str) -> int:
    """TCP_NODELAY (0: Nagle on) of the connection uvicorn accepts on `sock`, a bound socket
    not yet listening, when it serves with `stack` ("loop/http", as in SERVER_STACKS)."""
    loop, _, http = stack.partition("/")
    config = uvicorn.Config(_ok, loop=loop, http=http, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn ({stack}) did not start")
            time.sleep(0.01)
        with socket.create_connection(sock.getsockname()[:2], timeout=START_TIMEOUT_S) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            answer = b""
            while not answer.endswith(b"ok"):
                chunk = client.recv(4096)
                assert chunk, f"connection closed after {answer!r}"
                answer += chunk
            # Answered and still open: the server holds exactly this connection.
            (protocol,) = server.server_state.connections
            accepted = protocol.transport.get_extra_info("socket")
            return int(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
