"""Micro-batching by event-loop turn: what callers submit during one turn is handled in one call.

Under load many requests are ready at once (a burst read from one socket, several HTTP
connections readable in the same poll); each one alone would pay the fixed cost of an ONNX
Runtime call or of a SQLite commit. A `TurnBatch` collects what is submitted while the
loop runs its ready callbacks and hands it over in one list on the loop's next turn. Nothing
waits for a batch to fill: a lone request is handled on the very next turn (one `call_soon`
hop, a few microseconds), with whatever else was already queued by then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["TurnBatch"]

T = TypeVar("T")
R = TypeVar("R")


class TurnBatch(Generic[T, R]):
    """Calls `run(items)` once per loop turn for the items `submit`ted during the turn before.

    `run` returns one outcome per item, in order: a result, or an exception for that item
    only (so one bad item does not fail its batch-mates). An exception raised by `run`
    itself fails the whole batch. Every submitted item is run, even when its caller stopped
    waiting (cancelled): `run` may have effects (a commit) that must not depend on that.
    """

    def __init__(self, run: Callable[[list[T]], Sequence[R | BaseException]]) -> None:
        self._run = run
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._largest = 0

    @property
    def largest(self) -> int:
        """The most items run together so far (shown in /v1/state)."""
        return self._largest

    def submit(self, item: T) -> asyncio.Future[R]:
        """Queue `item` for the next turn; the future resolves to its outcome."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.append((item, future))
        return future

    def flush(self) -> None:
        """Run what is queued now (the loop calls it; a closing owner may call it early)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        self._largest = max(self._largest, len(pending))
        try:
            outcomes = self._run([item for item, _ in pending])
        except BaseException as exc:
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(pending, outcomes, strict=True):
            if future.done():  # the caller was cancelled; the item ran all the same
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
