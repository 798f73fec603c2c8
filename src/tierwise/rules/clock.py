"""Time as the rules see it: a `Clock` that is the wall clock in the agent and virtual in tests.

The agent and the simulator run the same decision code; only the clock differs, as in SimPy's
`RealtimeEnvironment`, which overrides one method of the simulated environment. A rule never
calls `time.time()` itself: it is handed `clock.now()` (or an array of times).

    clock = RealClock()          # the edge agent
    clock = VirtualClock(0.0)    # a test or a simulation: time moves only when told
    clock.advance(0.5)
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod


class Clock(ABC):
    """Seconds on a monotonic scale, and a way to wait for some of them."""

    @abstractmethod
    def now(self) -> float:
        """Seconds since an arbitrary, fixed origin; never goes backwards."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Block until `seconds` have passed on this clock."""

    @abstractmethod
    async def asleep(self, seconds: float) -> None:
        """Wait (without blocking the event loop) until `seconds` have passed on this clock."""

    def deadline(self, budget: float) -> float:
        """The instant `budget` seconds from now."""
        return self.now() + budget

    def remaining(self, deadline: float) -> float:
        """Seconds left before `deadline` (negative once it has passed)."""
        return deadline - self.now()


class RealClock(Clock):
    """The machine's monotonic clock: what a running agent uses."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class VirtualClock(Clock):
    """A clock that moves only when told: sleeping advances it at once, nothing waits."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward; refuses to go back, as a monotonic clock must."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self._now += seconds

    def advance_to(self, instant: float) -> None:
        self.advance(max(instant - self._now, 0.0))

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))

    async def asleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)  # still yield, so other tasks interleave as they would
