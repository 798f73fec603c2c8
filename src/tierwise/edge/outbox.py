"""The durable outbox: events wait in SQLite (WAL) until the cloud has them, within a byte cap.

An event is committed before `append` returns, so an answer that carries an `event_seq` is
backed by a row on disk: a SIGKILL after the acknowledgement cannot lose it. Each stream
numbers its events 1, 2, 3, ... and the numbering survives restarts (it lives in a table of
its own, so a dropped or uploaded event never has its number reused); the cloud deduplicates
by (site, stream, seq), so re-sending after a crash or a timeout is safe.

When the byte cap is reached the drop policy of `tierwise.rules.outbox` (the same rule the
simulator uses) decides what goes; every dropped event and byte is counted, on disk.

All SQLite work runs on one thread of its own. Appends that queue up while a commit is in
progress are written together in the next transaction (group commit), so many concurrent
requests cost one fsync, not one each.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from tierwise.rules.outbox import DropPolicy, admit

T = TypeVar("T")

DEFAULT_CAP_BYTES = 64 * 1024 * 1024
MAX_GROUP = 512  # appends per transaction at most
_OVERHEAD_BYTES = 24  # seq, ts and row bookkeeping, counted so tiny events still weigh something

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    size INTEGER NOT NULL,
    UNIQUE (stream, seq)
);
CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Durability(StrEnum):
    """What a commit survives.

    PROCESS (default): a crash or SIGKILL of the agent — the commit is in the WAL file, in
    the kernel's page cache, before the device hears back. POWER: also the machine losing
    power — one fsync per group commit (0.4 ms on an idle disk here, several ms on a busy
    one: see benchmarks/edge_overhead.py).
    """

    PROCESS = "process"
    POWER = "power"


@dataclass(frozen=True)
class StoredEvent:
    """An event as the outbox holds it: `id` orders the whole outbox, `seq` its stream."""

    id: int
    stream: str
    seq: int
    ts: float
    kind: str
    body: str  # JSON text, kept as written
    size: int


@dataclass(frozen=True)
class OutboxCounts:
    """Depth and what happened so far, as reported at /v1/state and in the site status."""

    depth_events: int
    depth_bytes: int
    cap_bytes: int
    dropped_events: int
    dropped_bytes: int
    uploaded_events: int


@dataclass(frozen=True)
class _Append:
    stream: str
    kind: str
    body: str
    ts: float
    future: Future[int | None]


class Outbox:
    """A bounded, durable FIFO of telemetry events, one SQLite file, one writer thread."""

    def __init__(
        self,
        path: Path,
        cap_bytes: int = DEFAULT_CAP_BYTES,
        policy: DropPolicy = DropPolicy.DROP_OLDEST,
        durability: Durability = Durability.PROCESS,
    ) -> None:
        self.path = path
        self.cap_bytes = cap_bytes
        self.policy = policy
        self.durability = durability
        self._queue: queue.SimpleQueue[_Append | tuple[Callable[[], Any], Future[Any]] | None]
        self._queue = queue.SimpleQueue()
        self._db: sqlite3.Connection | None = None
        self._last_seq: dict[str, int] = {}
        self._depth_events = 0
        self._depth_bytes = 0
        self._counters: dict[str, int] = {}
        self._closed = False
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="outbox-writer", daemon=True
        )
        self._thread.start()
        ready.result()  # raises what opening the database raised

    # --- public API (any thread; the async variants for the event loop) --------------------

    def append(self, stream: str, kind: str, body: dict[str, Any], ts: float) -> int | None:
        """Store one event and return its seq once committed; None if the policy refused it."""
        return self._submit_append(stream, kind, body, ts).result()

    async def append_async(
        self, stream: str, kind: str, body: dict[str, Any], ts: float
    ) -> int | None:
        return await asyncio.wrap_future(self._submit_append(stream, kind, body, ts))

    def oldest(self, max_events: int, max_bytes: int) -> list[StoredEvent]:
        """The oldest events, at most `max_events` and about `max_bytes` (at least one)."""
        return self._call(lambda: self._oldest(max_events, max_bytes))

    async def oldest_async(self, max_events: int, max_bytes: int) -> list[StoredEvent]:
        return await self._call_async(lambda: self._oldest(max_events, max_bytes))

    def remove(self, ids: list[int]) -> None:
        """Forget events the cloud has acknowledged."""
        self._call(lambda: self._remove(ids))

    async def remove_async(self, ids: list[int]) -> None:
        await self._call_async(lambda: self._remove(ids))

    def counts(self) -> OutboxCounts:
        """Depth and counters (read without a round trip through the writer thread)."""
        return OutboxCounts(
            depth_events=self._depth_events,
            depth_bytes=self._depth_bytes,
            cap_bytes=self.cap_bytes,
            dropped_events=self._counters.get("dropped_events", 0),
            dropped_bytes=self._counters.get("dropped_bytes", 0),
            uploaded_events=self._counters.get("uploaded_events", 0),
        )

    def close(self) -> None:
        """Finish what is queued, close the database and stop the writer thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    # --- the writer thread ----------------------------------------------------------------

    def _submit_append(
        self, stream: str, kind: str, body: dict[str, Any], ts: float
    ) -> Future[int | None]:
        if self._closed:
            raise RuntimeError("the outbox is closed")
        future: Future[int | None] = Future()
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
        self._queue.put(_Append(stream, kind, text, ts, future))
        return future

    def _call(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise RuntimeError("the outbox is closed")
        future: Future[T] = Future()
        self._queue.put((fn, future))
        return future.result()

    async def _call_async(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise RuntimeError("the outbox is closed")
        future: Future[T] = Future()
        self._queue.put((fn, future))
        return await asyncio.wrap_future(future)

    def _run(self, ready: Future[None]) -> None:
        try:
            self._open()
        except BaseException as exc:  # handed to the constructor's caller
            ready.set_exception(exc)
            return
        ready.set_result(None)
        carry: _Append | tuple[Callable[[], Any], Future[Any]] | None = None
        stop = False
        while True:
            item = carry if carry is not None else self._queue.get()
            carry = None
            if item is None:
                break
            if isinstance(item, _Append):
                group = [item]
                while len(group) < MAX_GROUP:  # group commit: take what queued meanwhile
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    if not isinstance(nxt, _Append):
                        carry = nxt
                        break
                    group.append(nxt)
                self._write_appends(group)
                if stop:
                    break
                continue
            fn, future = item
            try:
                _settle(future, fn())
            except BaseException as exc:
                _settle(future, exc=exc)
        assert self._db is not None
        self._db.close()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        sync = "FULL" if self.durability is Durability.POWER else "NORMAL"
        db.execute(f"PRAGMA synchronous={sync}")
        db.executescript(_SCHEMA)
        self._db = db
        self._open_mirrors(db)

    def _write_appends(self, items: list[_Append]) -> None:
        db = self._db
        assert db is not None
        results: list[int | None] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            touched: set[str] = set()
            for item in items:
                size = len(item.stream) + len(item.kind) + len(item.body) + _OVERHEAD_BYTES
                keep, evict = admit(self._depth_bytes, size, self.cap_bytes, self.policy)
                if evict > 0:
                    self._evict_oldest(db, int(evict))
                if not keep:
                    self._bump(db, "dropped_events", 1)
                    self._bump(db, "dropped_bytes", size)
                    results.append(None)
                    continue
                seq = self._last_seq.get(item.stream, 0) + 1
                self._last_seq[item.stream] = seq
                touched.add(item.stream)
                db.execute(
                    "INSERT INTO events (stream, seq, ts, kind, body, size) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (item.stream, seq, item.ts, item.kind, item.body, size),
                )
                self._depth_events += 1
                self._depth_bytes += size
                results.append(seq)
            db.executemany(
                "INSERT INTO streams (stream, last_seq) VALUES (?, ?) "
                "ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq",
                [(s, self._last_seq[s]) for s in touched],
            )
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._open_mirrors(db)  # undo the in-memory mirror of what rolled back
            for item in items:
                _settle(item.future, exc=exc)
            return
        for item, result in zip(items, results, strict=True):
            _settle(item.future, result)

    def _evict_oldest(self, db: sqlite3.Connection, nbytes: int) -> None:
        freed, ids = 0, []
        for event_id, size in db.execute("SELECT id, size FROM events ORDER BY id"):
            if freed >= nbytes:
                break
            ids.append(event_id)
            freed += size
        db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
        self._depth_events -= len(ids)
        self._depth_bytes -= freed
        self._bump(db, "dropped_events", len(ids))
        self._bump(db, "dropped_bytes", freed)

    def _bump(self, db: sqlite3.Connection, name: str, by: int) -> None:
        self._counters[name] = self._counters.get(name, 0) + by
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, self._counters[name]),
        )

    def _open_mirrors(self, db: sqlite3.Connection) -> None:
        """Seqs, counters and depth, mirrored in memory so reading them costs no query."""
        self._last_seq = dict(db.execute("SELECT stream, last_seq FROM streams").fetchall())
        self._counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        count, total = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
        self._depth_events, self._depth_bytes = int(count), int(total)

    def _oldest(self, max_events: int, max_bytes: int) -> list[StoredEvent]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT id, stream, seq, ts, kind, body, size FROM events ORDER BY id LIMIT ?",
            (max_events,),
        ).fetchall()
        out: list[StoredEvent] = []
        total = 0
        for row in rows:
            event = StoredEvent(*row)
            if out and total + event.size > max_bytes:
                break
            out.append(event)
            total += event.size
        return out

    def _remove(self, ids: list[int]) -> None:
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        removed, freed = 0, 0
        for i in ids:
            row = db.execute("DELETE FROM events WHERE id = ? RETURNING size", (i,)).fetchone()
            if row is not None:  # an event dropped by the cap meanwhile is already gone
                removed += 1
                freed += row[0]
        self._bump(db, "uploaded_events", removed)
        db.execute("COMMIT")
        self._depth_events -= removed
        self._depth_bytes -= freed


def _settle(future: Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    """Hand over a result unless the caller gave up waiting (a cancelled request): the
    writer thread must outlive every impatient caller."""
    if future.set_running_or_notify_cancel():
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
