"""One Clock, two implementations: the rules run on either."""

from __future__ import annotations

import asyncio
import time

import pytest

from tierwise.rules.clock import RealClock, VirtualClock, WallClock


def test_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock(10.0)
    deadline = clock.deadline(0.5)
    assert clock.remaining(deadline) == 0.5
    clock.sleep(0.2)
    assert clock.now() == pytest.approx(10.2)
    asyncio.run(clock.asleep(0.3))
    assert clock.remaining(deadline) == pytest.approx(0.0)
    clock.advance_to(5.0)  # the past: no move
    assert clock.now() == pytest.approx(10.5)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1.0)


def test_real_clock_is_monotonic_and_sleeps() -> None:
    clock = RealClock()
    start = clock.now()
    clock.sleep(0.01)
    asyncio.run(clock.asleep(0.01))
    assert clock.now() - start >= 0.02
    assert abs(clock.now() - time.monotonic()) < 0.1


def test_wall_clock_reads_epoch_seconds_and_waits_in_real_time() -> None:
    clock = WallClock()
    assert abs(clock.now() - time.time()) < 1.0
    assert clock.now() > 1.6e9  # 2020 or later: a calendar reading, not seconds since boot
    started = time.monotonic()
    clock.sleep(0.01)
    asyncio.run(clock.wait_until(clock.deadline(0.01)))
    assert time.monotonic() - started >= 0.02


def test_virtual_clock_wakes_a_waiter_only_when_advanced_past_its_instant() -> None:
    clock = VirtualClock(1_700_000_000.0)

    async def scenario() -> None:
        waiter = asyncio.create_task(clock.wait_until(1_700_000_010.0))
        await asyncio.sleep(0)
        clock.advance(5.0)
        for _ in range(3):
            await asyncio.sleep(0)
        assert not waiter.done()
        assert clock.now() == 1_700_000_005.0  # waiting did not move time
        clock.advance(5.0)
        await asyncio.wait_for(waiter, timeout=5)

    asyncio.run(scenario())
    asyncio.run(clock.wait_until(1_700_000_000.0))  # an instant already passed: no wait
    assert clock.now() == 1_700_000_010.0


def test_virtual_clock_advanced_from_another_thread_wakes_the_waiter() -> None:
    clock = VirtualClock()

    async def scenario() -> None:
        waiter = asyncio.create_task(clock.wait_until(60.0))
        await asyncio.sleep(0)
        await asyncio.to_thread(clock.advance, 60.0)  # a test thread driving a service's loop
        await asyncio.wait_for(waiter, timeout=5)

    asyncio.run(scenario())


def test_advancing_past_a_cancelled_waiter_is_harmless() -> None:
    clock = VirtualClock()

    async def scenario() -> None:
        waiter = asyncio.create_task(clock.wait_until(1.0))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(scenario())
    clock.advance(2.0)  # its event loop is closed: advancing past it is harmless
    assert clock.now() == 2.0
