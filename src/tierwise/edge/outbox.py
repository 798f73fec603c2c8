"""The durable outbox: events wait in SQLite (WAL) until the cloud has them, within a byte cap.

An event is committed before `append` returns, so an answer that carries an `event_seq` is
backed by a row on disk: a SIGKILL after the acknowledgement cannot lose it. Each stream
numbers its events 1, 2, 3, ... and the numbering survives restarts (it lives in a table of
its own, so a dropped or uploaded event never has its number reused); the cloud deduplicates
by (site, stream, seq), so re-sending after a crash or a timeout is safe.

When the byte cap is reached, or the disk's free space falls below a reserve (SQLite needs
room to delete what was uploaded), the drop policy of `tierwise.rules.outbox` (the same rule the
simulator uses) decides what goes; every dropped event and byte is counted, on disk.

Where the commit runs depends on the durability asked for:

- PROCESS: on the caller's thread (the agent's event loop). A commit without fsync takes
  tens of microseconds; handing it to another thread would cost more in GIL handoffs than
  the work itself. `append_async` commits what was appended during one loop turn in one
  transaction on the next turn (`TurnBatch`): under load the commit is shared by the
  answers of a turn; a lone answer waits one `call_soon` hop, not for others to come.
  WAL checkpoints, which do fsync, run on a thread of their own.
- POWER: on a writer thread, because each commit waits for an fsync. Appends that queue up
  meanwhile are written in the next transaction together (group commit): many concurrent
  requests share one fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from tierwise.edge.outbox_store import (
    DEFAULT_DISK_RESERVE_BYTES,
    Durability,
    NewEvent,
    OutboxCounts,
    OutboxStore,
    StoredEvent,
)
from tierwise.edge.turn_batch import TurnBatch
from tierwise.rules.outbox import DropPolicy

__all__ = [
    "DEFAULT_CAP_BYTES",
    "Durability",
    "Outbox",
    "OutboxCounts",
    "StoredEvent",
    "encode_body",
]

T = TypeVar("T")

DEFAULT_CAP_BYTES = 64 * 1024 * 1024
MAX_GROUP = 512  # appends per transaction at most
CHECKPOINT_INTERVAL_S = 1.0

_Job = tuple[Callable[[], Any], "Future[Any]"]
# One encoder for every event: json.dumps with options builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode_body(body: dict[str, Any]) -> str:
    """An event body as the outbox stores and uploads it: compact JSON, ASCII only (so its
    length is its size in bytes)."""
    return _JSON.encode(body)


class Outbox:
    """A bounded, durable FIFO of telemetry events in one SQLite file."""

    def __init__(
        self,
        path: Path,
        cap_bytes: int = DEFAULT_CAP_BYTES,
        policy: DropPolicy = DropPolicy.DROP_OLDEST,
        durability: Durability = Durability.PROCESS,
        disk_reserve_bytes: int = DEFAULT_DISK_RESERVE_BYTES,
    ) -> None:
        self.path = path
        self.durability = durability
        inline = durability is Durability.PROCESS
        self._store = OutboxStore(
            path, cap_bytes, policy, durability, not inline, disk_reserve_bytes
        )
        self._closed = False
        self._writer = None if inline else _GroupCommitThread(self._store)
        self._checkpointer = _Checkpointer(path) if inline else None
        # PROCESS: the appends of one loop turn share a transaction. The lock keeps a flush
        # on the loop and `close` (called from a worker thread) from using the store at once.
        self._turn: TurnBatch[NewEvent, int | None] = TurnBatch(self._commit_turn)
        self._store_lock = threading.Lock()

    @property
    def cap_bytes(self) -> int:
        return self._store.cap_bytes

    def append(self, stream: str, kind: str, body: dict[str, Any], ts: float) -> int | None:
        """Store one event and return its seq once committed; None if the policy refused it."""
        item = self._new(stream, kind, body, ts)
        if self._writer is None:
            with self._store_lock:
                return self._store.append([item])[0]
        return self._writer.append(item).result()

    async def append_async(
        self, stream: str, kind: str, body: dict[str, Any], ts: float
    ) -> int | None:
        """Store one event; its seq once committed (None if the policy refused it)."""
        item = self._new(stream, kind, body, ts)
        if self._writer is None:
            return await self._turn.submit(item)
        return await asyncio.wrap_future(self._writer.append(item))

    def oldest(self, max_events: int, max_bytes: int) -> list[StoredEvent]:
        """The oldest events, at most `max_events` and about `max_bytes` (at least one)."""
        return self._run(lambda: self._store.oldest(max_events, max_bytes))

    async def oldest_async(self, max_events: int, max_bytes: int) -> list[StoredEvent]:
        return await self._run_async(lambda: self._store.oldest(max_events, max_bytes))

    async def oldest_ts_async(self) -> float | None:
        """When the oldest unsent event happened (None: nothing is waiting)."""
        return await self._run_async(self._store.oldest_ts)

    def remove(self, batch: list[StoredEvent]) -> None:
        """Forget a batch the cloud acknowledged (the oldest events, as `oldest` gave them)."""
        if batch:
            last = max(e.id for e in batch)
            self._run(lambda: self._store.remove_through(last))

    async def remove_async(self, batch: list[StoredEvent]) -> None:
        if batch:
            last = max(e.id for e in batch)
            await self._run_async(lambda: self._store.remove_through(last))

    @property
    def depth_events(self) -> int:
        """Events waiting (asked after every answer: no counts object made)."""
        return self._store.depth_events

    def counts(self) -> OutboxCounts:
        """Depth and counters, from the in-memory mirror (no query)."""
        return self._store.counts()

    def close(self) -> None:
        """Finish what is queued, checkpoint, close the database. (PROCESS: an append still
        waiting for its loop turn fails as closed: not committed, so never acknowledged.)"""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.stop()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._store_lock:
            self._store.close()

    @property
    def largest_group(self) -> int:
        """The most events committed in one transaction so far (PROCESS: per loop turn)."""
        return self._turn.largest if self._writer is None else self._writer.largest

    def _commit_turn(self, items: list[NewEvent]) -> list[int | None]:
        with self._store_lock:
            if self._closed:
                raise RuntimeError("the outbox is closed")
            return self._store.append(items)

    def _new(self, stream: str, kind: str, body: dict[str, Any], ts: float) -> NewEvent:
        if self._closed:
            raise RuntimeError("the outbox is closed")
        return NewEvent(stream, kind, encode_body(body), ts)

    def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise RuntimeError("the outbox is closed")
        return fn() if self._writer is None else self._writer.call(fn).result()

    async def _run_async(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise RuntimeError("the outbox is closed")
        if self._writer is None:
            return fn()
        return await asyncio.wrap_future(self._writer.call(fn))


class _GroupCommitThread:
    """Owns the store for POWER durability: every operation runs on this one thread."""

    def __init__(self, store: OutboxStore) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[tuple[NewEvent, Future[int | None]] | _Job | None]
        self._queue = queue.SimpleQueue()
        self.largest = 0  # the most appends committed together so far
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)
        self._thread.start()

    def append(self, item: NewEvent) -> Future[int | None]:
        future: Future[int | None] = Future()
        self._queue.put((item, future))
        return future

    def call(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((fn, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        carry: tuple[NewEvent, Future[int | None]] | _Job | None = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
            if job is None:
                return
            if isinstance(job[0], NewEvent):
                group = [job]
                stop = False
                while len(group) < MAX_GROUP:  # group commit: take what queued meanwhile
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    if not isinstance(nxt[0], NewEvent):
                        carry = nxt
                        break
                    group.append(nxt)
                self._commit(group)
                if stop:
                    return
                continue
            fn, future = job
            try:
                result = fn()
            except BaseException as exc:
                _settle(future, exc=exc)
            else:
                _settle(future, result)

    def _commit(self, group: list[tuple[NewEvent, Future[int | None]]]) -> None:
        self.largest = max(self.largest, len(group))
        try:
            seqs = self.store.append([item for item, _ in group])
        except BaseException as exc:
            for _, future in group:
                _settle(future, exc=exc)
            return
        for (_, future), seq in zip(group, seqs, strict=True):
            _settle(future, seq)


class _Checkpointer:
    """Moves the WAL into the database every second, off the event loop (PROCESS mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                stopping = self._stop.wait(CHECKPOINT_INTERVAL_S)
                with contextlib.suppress(sqlite3.Error):  # busy: the next round catches up
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                if stopping:
                    return
        finally:
            db.close()


def _settle(future: Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    """Hand over a result unless the caller gave up waiting (a cancelled request): the
    writer thread must outlive every impatient caller."""
    if future.set_running_or_notify_cancel():
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
