"""How fast the federation polls: Flower 1.42's WAN-sized waits, shortened for sites on a LAN.

Flower's Deployment Engine is pull-based and tuned for sites across the internet: an idle
SuperNode sleeps 3 s between pulls, waits in 0.5 s steps for its ClientApp's reply, and an
object that is not there yet is retried after 1 s (doubling up to 10 s); the ServerApp's
`send_and_receive` sleeps 3 s between pulls; the SuperExec asks for a new run to start every
1 s. With one message per site per round those waits dominate a round. tierwise keeps
Flower's protocol and processes and only shortens the waits: a round-aware `Pacer` (nap
through most of the expected gap, then a short `Backoff`) in its own loops, the SuperExec's
interval through the environment variable Flower reads it from (`SUPEREXEC_POLL_ENV`) and,
in Flower's loops that take no setting, the two module globals patched by `tune_supernode`
and `tune_serverapp`. Those globals are private to flwr==1.42.0 (pinned); the test suite
checks they and the variable still exist so an upgrade cannot silently bring the slow waits
back.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

# Idle polls stop growing here. Every poll is an HTTP request some Python process must
# serve; with ten sites on two cores, shorter idle polls cost more CPU than they save.
IDLE_CAP = 0.6
FAST_INITIAL_BACKOFF = 0.01
FAST_BACKOFF_CAP = 0.2
FAST_OBJECT_BACKOFF = {"initial_backoff": FAST_INITIAL_BACKOFF, "backoff_cap": FAST_BACKOFF_CAP}
# How often the SuperLink's SuperExec asks whether a run waits for its ServerApp process:
# a submitted run waits half of it on average (Flower's default: 1 s). One process polls,
# however many sites there are.
SUPEREXEC_POLL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"
SUPEREXEC_POLL_S = 0.2


@dataclass
class Backoff:
    """Sleep `start` seconds after activity, growing by `factor` while idle, up to `cap`."""

    start: float = 0.01
    factor: float = 1.5
    cap: float = 0.25
    _current: float = field(default=0.0, init=False)

    def reset(self) -> None:
        self._current = 0.0

    def next_delay(self) -> float:
        self._current = (
            self.start if self._current == 0.0 else min(self.cap, self._current * self.factor)
        )
        return self._current

    def sleep(self) -> None:
        time.sleep(self.next_delay())


@dataclass
class Pacer:
    """When to poll next, knowing that messages come in rounds.

    After a site answers, its next message waits for every other site and for the
    aggregation: nothing can arrive for most of a gap as long as the last few. The pacer
    remembers the last `history` gaps (answer sent -> next message seen), naps through
    `early` of the shortest in one sleep, then polls with a backoff. Until it has seen
    enough gaps, and whenever a gap runs past its expected end, it is a plain backoff.
    """

    backoff: Backoff = field(default_factory=lambda: Backoff(start=0.02, cap=IDLE_CAP))
    after_nap: Backoff = field(default_factory=lambda: Backoff(start=0.04, factor=1.8, cap=0.3))
    early: float = 0.7
    history: int = 3
    max_nap: float = 5.0
    _gaps: deque[float] = field(default_factory=deque, init=False)
    _idle_since: float | None = field(default=None, init=False)
    _napped: bool = field(default=False, init=False)

    def idle(self, now: float) -> None:
        """The work at hand is done; the wait for the next message starts."""
        if self._idle_since is None:
            self._idle_since = now
            self._napped = False
            self.backoff.reset()
            self.after_nap.reset()

    def work(self, now: float) -> None:
        """A message arrived: remember how long the gap was."""
        if self._idle_since is not None:
            self._gaps.append(now - self._idle_since)
            while len(self._gaps) > self.history:
                self._gaps.popleft()
            self._idle_since = None
        self.backoff.reset()

    def next_delay(self, now: float) -> float:
        if self._idle_since is not None and len(self._gaps) >= self.history:
            wake = self._idle_since + self.early * min(self._gaps)
            if not self._napped and wake - now > self.after_nap.start:
                self._napped = True
                return min(wake - now, self.max_nap)
            if self._napped:
                return self.after_nap.next_delay()
        return self.backoff.next_delay()


class _SuperNodeClock:
    """Stands in for `time` inside Flower's SuperNode loop; only `sleep` differs.

    Flower calls sleep(3) when a pull found nothing (idle: ask the pacer how long) and
    sleep(0.5) while waiting for its ClientApp's reply or a reply object (busy: poll the
    node's own state fast). Idle after busy means the answer went out; busy after idle
    means a message arrived.
    """

    IDLE_SLEEP = 3
    BUSY_POLL = 0.01

    def __init__(self, pacer: Pacer) -> None:
        self._pacer = pacer
        self._busy = False

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        now = time.monotonic()
        if seconds >= self.IDLE_SLEEP:
            if self._busy:
                self._busy = False
                self._pacer.idle(now)
            time.sleep(self._pacer.next_delay(now))
        else:
            if not self._busy:
                self._busy = True
                self._pacer.work(now)
            time.sleep(min(seconds, self.BUSY_POLL))


def supernode_module() -> ModuleType:
    import flwr.supernode.start_client_internal as module

    return module


def serverapp_grid_module() -> ModuleType:
    import flwr.superlink.grid.http_grid as module

    return module


def tune_supernode(pacer: Pacer | None = None) -> None:
    """Shorten the SuperNode loop's waits (call before starting the SuperNode)."""
    module = supernode_module()
    clock = _SuperNodeClock(pacer or Pacer())
    setattr(module, "time", clock)  # noqa: B010
    _fast_object_pulls(module)


def tune_serverapp() -> None:
    """Shorten the ServerApp's retry wait for reply objects still in flight."""
    _fast_object_pulls(serverapp_grid_module())


def _fast_object_pulls(module: ModuleType) -> None:
    pull = getattr(module, "pull_objects")  # noqa: B009 - a module global, patched by name
    if not isinstance(pull, functools.partial):
        setattr(module, "pull_objects", functools.partial(pull, **FAST_OBJECT_BACKOFF))  # noqa: B010
