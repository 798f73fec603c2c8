"""Time as the rules see it: a `Clock` that is the machine's clock when running, virtual in tests.

The agent and the cloud read time only through a clock handed to them, so a test swaps in a
virtual one and runs the same code, as SimPy's `RealtimeEnvironment` overrides one method of
the simulated environment. (The simulator shares the rules but keeps its own vectorized time.)
The rules and the cloud never call `time.time()`: they are handed a clock (or `clock.now()`).
Timing real work for a latency histogram is another matter; it stays `time.perf_counter()`.
Which clock:

    RealClock()     monotonic seconds from an arbitrary origin: durations and deadlines within
                    one process (the edge agent's router, uploader, cloud-health window)
    WallClock()     seconds since the Unix epoch: instants that are stored or shown (the
                    cloud's database timestamps, compared across restarts and between
                    replicas, which a monotonic reading cannot be); it may jump when the
                    machine's clock is set, so deadlines stay on RealClock
    VirtualClock()  tests and simulations: time moves only when told; start it at a realistic
                    epoch (`VirtualClock(1.7e9)`) where it stands in for a WallClock

    clock = VirtualClock(0.0)
    clock.advance(0.5)

A virtual clock has two kinds of sleeper. Whoever sleeps on it (`sleep`, `asleep`) moves it
at once: the one process of a simulation drives time. Whoever waits for an instant
(`wait_until`: a background loop such as the cloud's rollout ticker) follows the time someone
else drives, and wakes when `advance` passes that instant, from whatever thread calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from abc import ABC, abstractmethod


class Clock(ABC):
    """Seconds on one scale, and ways to wait for some of them."""

    @abstractmethod
    def now(self) -> float:
        """Seconds since this clock's origin (for a WallClock, the Unix epoch)."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Block until `seconds` have passed on this clock."""

    @abstractmethod
    async def asleep(self, seconds: float) -> None:
        """Wait (without blocking the event loop) until `seconds` have passed on this clock."""

    async def wait_until(self, instant: float) -> None:
        """Wait (without blocking the event loop) until this clock reads `instant`."""
        await self.asleep(self.remaining(instant))

    def deadline(self, budget: float) -> float:
        """The instant `budget` seconds from now."""
        return self.now() + budget

    def remaining(self, deadline: float) -> float:
        """Seconds left before `deadline` (negative once it has passed)."""
        return deadline - self.now()


class RealClock(Clock):
    """The machine's monotonic clock: what a running agent measures deadlines with."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class WallClock(RealClock):
    """The machine's calendar clock, in seconds since the Unix epoch: what the cloud stores.

    Only `now` differs from RealClock; waiting is the same real waiting.
    """

    def now(self) -> float:
        return time.time()


class VirtualClock(Clock):
    """A clock that moves only when told: sleeping on it moves it at once, nothing really waits.

    `wait_until` is the one exception: it waits for `advance` to reach its instant.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()  # `advance` may come from another thread than the waiters
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake whoever waits for an instant it passed.

        Refuses to go back, as a monotonic clock must.
        """
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        with self._lock:
            self._now += seconds
            due = [w for w in self._waiters if w[0] <= self._now]
            self._waiters = [w for w in self._waiters if w[0] > self._now]
        for _instant, woken in due:
            _resolve_soon(woken)

    def advance_to(self, instant: float) -> None:
        self.advance(max(instant - self._now, 0.0))

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))

    async def asleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)  # still yield, so other tasks interleave as they would

    async def wait_until(self, instant: float) -> None:
        """Wait until someone advances this clock to `instant`; never moves it itself."""
        woken = asyncio.get_running_loop().create_future()
        with self._lock:
            if instant > self._now:
                self._waiters.append((instant, woken))
            else:
                woken.set_result(None)
        try:
            await woken
        finally:  # cancelled: advance must not wake a waiter that is gone
            with self._lock:
                self._waiters = [w for w in self._waiters if w[1] is not woken]


def _resolve_soon(future: asyncio.Future[None]) -> None:
    """Resolve `future` on its own event loop, which may run in another thread."""

    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits any more
        future.get_loop().call_soon_threadsafe(resolve)
