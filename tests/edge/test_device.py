"""The device client's kept-alive connection: reused while fresh, replaced when the server
closed it, and a request sent twice only when the server cannot have read it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from tierwise.edge import device
from tierwise.edge.device import DeviceConnection

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# What the server does with the n-th request (1-based) on a connection: answer, drop the
# connection without a byte (as when it closed an idle one), or die halfway through the answer.
Behaviour = Callable[[int], str]


@asynccontextmanager
async def http_server(behaviour: Behaviour) -> AsyncIterator[tuple[str, dict[str, int]]]:
    seen = {"connections": 0, "requests": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                n += 1
                seen["requests"] += 1
                what = behaviour(n)
                if what == "drop":
                    return
                if what == "half":
                    writer.write(OK[:20])
                    await writer.drain()
                    return
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()


def answered(behaviour: Behaviour, requests: int) -> dict[str, int]:
    """Send `requests` posts on one DeviceConnection, each answered 200: what the server saw."""

    async def scenario() -> dict[str, int]:
        async with http_server(behaviour) as (url, seen):
            conn = DeviceConnection(url)
            for _ in range(requests):
                assert await conn.post("/v1/predict/f", b"{}") == (200, b"ok")
            conn.close()
            return seen

    return asyncio.run(scenario())


def test_a_connection_is_reused_while_fresh() -> None:
    assert answered(lambda n: "answer", 5) == {"connections": 1, "requests": 5}


def test_a_request_on_a_connection_the_server_dropped_is_sent_again_on_a_new_one() -> None:
    # The second request on each connection meets a close without an answer.
    seen = answered(lambda n: "answer" if n == 1 else "drop", 3)
    assert seen["connections"] == 3
    assert seen["requests"] == 5  # requests 2 and 3 each went out twice, answered once


def test_an_answer_cut_halfway_is_an_error_not_a_second_request() -> None:
    async def scenario() -> dict[str, int]:
        async with http_server(lambda n: "answer" if n == 1 else "half") as (url, seen):
            conn = DeviceConnection(url)
            assert await conn.post("/v1/predict/f", b"{}") == (200, b"ok")
            with pytest.raises(asyncio.IncompleteReadError):
                await conn.post("/v1/predict/f", b"{}")
            assert await conn.post("/v1/predict/f", b"{}") == (200, b"ok")  # reconnects
            conn.close()
            return seen

    assert asyncio.run(scenario()) == {"connections": 2, "requests": 3}


def test_a_new_connection_that_fails_is_not_retried() -> None:
    async def scenario() -> dict[str, int]:
        async with http_server(lambda n: "drop") as (url, seen):
            conn = DeviceConnection(url)
            with pytest.raises(asyncio.IncompleteReadError):
                await conn.post("/v1/predict/f", b"{}")
            return seen

    assert asyncio.run(scenario()) == {"connections": 1, "requests": 1}


def test_a_connection_idle_past_the_expiry_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "IDLE_EXPIRY_S", 0.0)
    assert answered(lambda n: "answer", 3) == {"connections": 3, "requests": 3}
