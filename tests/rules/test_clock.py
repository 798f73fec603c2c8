"""One Clock, two implementations: the rules run on either."""

from __future__ import annotations

import asyncio
import time

import pytest

from tierwise.rules.clock import RealClock, VirtualClock


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
