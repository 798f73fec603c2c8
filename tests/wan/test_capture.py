"""The WAN proxy's capture holds every byte that crossed, per connection and direction."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from tierwise.wan import WanConditions, WanProxy, read_streams

from .test_proxy import echo_server, proxy_process, run


async def _exchange(port: int, messages: list[bytes]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = b""
    for message in messages:
        writer.write(message)
        await writer.drain()
        got += await reader.readexactly(len(message))
    writer.close()
    return got


def test_capture_holds_both_directions_of_every_connection_in_order(tmp_path: Path) -> None:
    path = tmp_path / "wire.bin"
    first = [b"alpha " * 3000, b"beta\n"]  # the first spans several 64 KB reads at most
    second = [b"gamma\n"]

    async def body() -> None:
        async with echo_server() as (port, _):
            proxy = WanProxy(("127.0.0.1", port), WanConditions(rtt_p50_s=0.002), capture=path)
            await proxy.start()
            try:
                assert await _exchange(proxy.port, first) == b"".join(first)
                assert await _exchange(proxy.port, second) == b"".join(second)
            finally:
                await proxy.close()

    run(body)
    streams = read_streams(path)
    assert streams == {
        (1, "up"): b"".join(first),
        (1, "down"): b"".join(first),
        (2, "up"): b"".join(second),
        (2, "down"): b"".join(second),
    }


def test_without_capture_nothing_is_written(tmp_path: Path) -> None:
    async def body() -> None:
        async with echo_server() as (port, _):
            proxy = WanProxy(("127.0.0.1", port), WanConditions())
            await proxy.start()
            try:
                await _exchange(proxy.port, [b"x\n"])
            finally:
                await proxy.close()
            assert proxy.capture is None

    run(body)
    assert list(tmp_path.iterdir()) == []


def test_the_proxy_process_captures_with_its_capture_option(tmp_path: Path) -> None:
    path = tmp_path / "wire.bin"

    async def body() -> None:
        async with echo_server() as (port, _):
            proc, proxy_port = await proxy_process(port, "--capture", str(path))
            assert proc.stdout is not None
            await _exchange(proxy_port, [b"hello over the wan\n"])
            proc.send_signal(signal.SIGTERM)
            stats = json.loads((await proc.stdout.readline()).decode())
            assert await proc.wait() == 0
            assert stats["bytes_up"] == stats["bytes_down"] == len(b"hello over the wan\n")

    run(body)
    assert read_streams(path) == {
        (1, "up"): b"hello over the wan\n",
        (1, "down"): b"hello over the wan\n",
    }
