"""The WAN proxy delays, loses and cuts real TCP traffic on loopback as configured."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from tierwise.wan import LossMode, Outage, OutageMode, WanConditions, WanProxy


@asynccontextmanager
async def echo_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A TCP server that echoes every chunk back and remembers what it received."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                received.append(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], received
    finally:
        server.close()


@asynccontextmanager
async def proxied(
    conditions: WanConditions, seed: int = 1
) -> AsyncIterator[tuple[WanProxy, list[bytes]]]:
    async with echo_server() as (port, received):
        proxy = WanProxy(("127.0.0.1", port), conditions, seed=seed)
        await proxy.start()
        try:
            yield proxy, received
        finally:
            await proxy.close()


async def round_trips(port: int, n: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        writer.write(b"ping %d\n" % i)
        await writer.drain()
        await reader.readline()
        times.append(time.perf_counter() - t0)
    writer.close()
    return times


def run(coro: Callable[[], Awaitable[None]], timeout: float = 30.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro(), timeout)

    asyncio.run(bounded())


def test_round_trip_times_follow_the_configured_p50_and_p99() -> None:
    cond = WanConditions(rtt_p50_s=0.010, rtt_p99_s=0.040)

    async def body() -> None:
        async with proxied(cond) as (proxy, _):
            parts = await asyncio.gather(*(round_trips(proxy.port, 100) for _ in range(8)))
        times = sorted(t for part in parts for t in part)
        p50 = statistics.median(times)
        p99 = times[int(0.99 * len(times))]
        print(f"measured rtt p50 {p50 * 1e3:.1f} ms (10), p99 {p99 * 1e3:.1f} ms (40)")
        # Below: the distribution itself. Above: room for a busy machine's scheduling, but not
        # for a doubled delay (each way getting the whole round trip would give p50 20 ms).
        assert 0.009 < p50 < 0.017
        assert 0.030 < p99 < 0.080

    run(body)


def test_byte_order_is_kept_under_jitter() -> None:
    cond = WanConditions(rtt_p50_s=0.005, rtt_p99_s=0.050)

    async def body() -> None:
        async with proxied(cond) as (proxy, received):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            sent = b"".join(b"%05d," % i for i in range(400))
            for i in range(0, len(sent), 30):
                writer.write(sent[i : i + 30])
                await writer.drain()
                await asyncio.sleep(0)
            echoed = await reader.readexactly(len(sent))
            writer.close()
        assert echoed == sent
        assert b"".join(received) == sent

    run(body)


def test_stall_loss_delays_about_the_loss_share_by_a_retransmission_timeout() -> None:
    cond = WanConditions(loss=0.3, loss_mode=LossMode.STALL, retransmit_timeout_s=0.05)

    async def body() -> None:
        async with proxied(cond, seed=7) as (proxy, _):
            parts = await asyncio.gather(*(round_trips(proxy.port, 50) for _ in range(4)))
            stalls = proxy.stats.stalls
        times = [t for part in parts for t in part]
        slow = sum(t >= 0.045 for t in times) / len(times)
        print(f"exchanges stalled {slow:.1%} (chunks lost 1-(0.7^2) = 51%), stalls {stalls}")
        assert 0.38 < slow < 0.64  # two chunks per exchange, each lost with p = 0.3
        assert stalls > 0

    run(body)


def test_reset_loss_resets_connections() -> None:
    cond = WanConditions(loss=0.5, loss_mode=LossMode.RESET)

    async def body() -> None:
        async with proxied(cond) as (proxy, _):
            resets = 0
            for _ in range(20):
                try:
                    await round_trips(proxy.port, 5)
                except (ConnectionError, asyncio.IncompleteReadError):
                    resets += 1
            assert proxy.stats.resets == resets > 0

    run(body)


def test_blackhole_outage_delivers_late_even_after_the_sender_gave_up() -> None:
    async def body() -> None:
        async with proxied(WanConditions()) as (proxy, received):
            proxy.set_down(True)
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"sent during the outage\n")
            await writer.drain()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.readline(), 0.2)
            writer.close()  # the client times out and leaves
            await asyncio.sleep(0.1)
            assert received == []
            proxy.set_down(False)
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.01)
            assert b"".join(received) == b"sent during the outage\n"
            assert proxy.stats.held >= 1

    run(body)


def test_refuse_outage_resets_open_and_new_connections_on_a_schedule() -> None:
    cond = WanConditions(outages=(Outage(0.3, 0.3),), outage_mode=OutageMode.REFUSE)

    async def body() -> None:
        async with proxied(cond) as (proxy, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"before\n")
            assert await reader.readline() == b"before\n"
            await asyncio.sleep(0.35)  # inside the outage
            assert proxy.is_down()
            # The open connection was reset at the outage's start: reading gives nothing.
            assert await reader.read() == b""
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await round_trips(proxy.port, 1)
            await asyncio.sleep(0.3)  # after the outage
            assert not proxy.is_down()
            assert len(await round_trips(proxy.port, 3)) == 3
            assert proxy.stats.refused >= 1
            assert proxy.stats.resets >= 1

    run(body)


def test_conditions_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="p99"):
        WanConditions(rtt_p50_s=0.1, rtt_p99_s=0.05)
    with pytest.raises(ValueError, match="loss"):
        WanConditions(loss=1.5)
    with pytest.raises(ValueError, match="outage"):
        WanConditions(outages=(Outage(0, 0),))


async def proxy_process(target_port: int, *args: str) -> tuple[asyncio.subprocess.Process, int]:
    """`python -m tierwise.wan` in front of `target_port`; returns once it listens."""
    import subprocess
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tierwise.wan",
        "--target",
        f"127.0.0.1:{target_port}",
        *args,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    assert line.startswith("listening on http://127.0.0.1:"), line
    return proc, int(line.rsplit(":", 1)[1])


def test_proxy_runs_as_its_own_process_with_signal_controlled_outages() -> None:
    import json
    import signal

    async def body() -> None:
        async with echo_server() as (port, _):
            proc, proxy_port = await proxy_process(port, "--rtt", "20ms/20ms")
            assert proc.stdout is not None
            times = await round_trips(proxy_port, 3)
            assert all(0.018 < t < 0.2 for t in times), times
            proc.send_signal(signal.SIGUSR1)  # outage
            await asyncio.sleep(0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
            writer.write(b"x\n")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.readline(), 0.2)
            proc.send_signal(signal.SIGUSR2)  # back
            assert await asyncio.wait_for(reader.readline(), 2.0) == b"x\n"
            writer.close()
            proc.send_signal(signal.SIGTERM)
            stats = json.loads((await proc.stdout.readline()).decode())
            assert await proc.wait() == 0
            assert stats["held"] >= 1
            assert stats["chunks_up"] == 4

    run(body)


def test_proxy_process_rejects_bad_arguments_in_one_line() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "tierwise.wan", "--target", "127.0.0.1:1", "--outages", "30s"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "expected an outage like 30s@60s" in out.stderr


def test_conditions_from_a_spec_link_fit_its_percentiles() -> None:
    import random

    from tierwise.spec.model import Link

    link = Link(rtt_p50="60ms", rtt_p99="250ms", bandwidth="20Mbps", loss="5%")
    cond = WanConditions.from_link(link, outages=(Outage(12, 30),))
    rng = random.Random(5)
    samples = sorted(cond.sample_rtt(rng) for _ in range(200_000))
    assert abs(samples[100_000] - 0.060) < 0.002
    assert abs(samples[198_000] - 0.250) < 0.01
    assert cond.loss == 0.05
    assert cond.scheduled_outage(20.0)
    assert not cond.scheduled_outage(42.0)


def test_conditions_survive_the_trip_through_command_line_arguments() -> None:
    from tierwise.wan.__main__ import parse_args

    cond = WanConditions(
        rtt_p50_s=0.06,
        rtt_p99_s=0.25,
        loss=0.05,
        loss_mode=LossMode.RESET,
        outages=(Outage(12, 30), Outage(100, 2.5)),
        outage_mode=OutageMode.REFUSE,
    )
    _, parsed = parse_args(["--target", "127.0.0.1:1", *cond.to_args()])
    assert parsed == cond
