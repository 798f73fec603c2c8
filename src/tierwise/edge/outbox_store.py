"""The outbox's SQLite file: events, per-stream numbering and counters, within a byte cap.

Single-threaded by contract: one `OutboxStore` is used by one thread at a time (the `Outbox`
decides which). Depth, last seqs and counters are mirrored in memory, so reading them costs
no query; after a failed transaction the mirrors are re-read from disk.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tierwise.rules.outbox import DropPolicy, admit

_OVERHEAD_BYTES = 24  # seq, ts and row bookkeeping, counted so tiny events still weigh something
# Free disk space the outbox leaves alone. Below it the outbox counts as full whatever its cap
# says: SQLite needs room in its WAL to delete what was uploaded (and to evict by the drop
# policy), so a disk filled to the last byte would keep even the uploader from freeing it.
DEFAULT_DISK_RESERVE_BYTES = 8 * 1024 * 1024

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
_INSERT = "INSERT INTO events (stream, seq, ts, kind, body, size) VALUES (?, ?, ?, ?, ?, ?)"


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
class NewEvent:
    """An event to append: its stream, kind, JSON body text and Unix time."""

    stream: str
    kind: str
    body: str
    ts: float


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


class OutboxStore:
    """One SQLite connection in WAL mode holding the outbox."""

    def __init__(
        self,
        path: Path,
        cap_bytes: int,
        policy: DropPolicy,
        durability: Durability,
        autocheckpoint: bool,
        disk_reserve_bytes: int = DEFAULT_DISK_RESERVE_BYTES,
    ) -> None:
        self.cap_bytes = cap_bytes
        self.policy = policy
        self.disk_reserve_bytes = disk_reserve_bytes
        self._dir = path.parent
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if durability is Durability.POWER else 'NORMAL'}")
        if not autocheckpoint:  # a checkpoint fsyncs: the caller runs them off the hot path
            db.execute("PRAGMA wal_autocheckpoint=0")
        db.executescript(_SCHEMA)
        self.db = db
        self._last_seq: dict[str, int] = {}
        self._counters: dict[str, int] = {}
        self.depth_events = self.depth_bytes = 0
        self._mirror()

    def counts(self) -> OutboxCounts:
        return OutboxCounts(
            depth_events=self.depth_events,
            depth_bytes=self.depth_bytes,
            cap_bytes=self.cap_bytes,
            dropped_events=self._counters.get("dropped_events", 0),
            dropped_bytes=self._counters.get("dropped_bytes", 0),
            uploaded_events=self._counters.get("uploaded_events", 0),
        )

    def append(self, items: list[NewEvent]) -> list[int | None]:
        """Number and store `items` in one transaction: each one's seq, or None if refused."""
        db = self.db
        results: list[int | None] = []
        sizes = [len(i.stream) + len(i.kind) + len(i.body) + _OVERHEAD_BYTES for i in items]
        cap = self._cap_now()
        try:
            db.execute("BEGIN IMMEDIATE")
            if self.depth_bytes + sum(sizes) <= cap:
                # Everything fits: `admit` would keep each item and evict nothing.
                results = self._insert_all(items, sizes)
            else:
                results = self._admit_each(items, sizes, cap)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._mirror()  # undo the in-memory mirror of what rolled back
            raise
        return results

    def _insert_all(self, items: list[NewEvent], sizes: list[int]) -> list[int | None]:
        rows = []
        results: list[int | None] = []
        for item, size in zip(items, sizes, strict=True):
            seq = self._last_seq.get(item.stream, 0) + 1
            self._last_seq[item.stream] = seq
            rows.append((item.stream, seq, item.ts, item.kind, item.body, size))
            results.append(seq)
        self.db.executemany(_INSERT, rows)
        self.depth_events += len(rows)
        self.depth_bytes += sum(sizes)
        self._save_last_seqs({item.stream for item in items})
        return results

    def _cap_now(self) -> int:
        """The byte cap, or what is queued now when the disk is down to its reserve: then the
        drop policy makes room (counted) instead of SQLite failing with a full disk."""
        if self._free_bytes() >= self.disk_reserve_bytes:
            return self.cap_bytes
        # The WAL may hold most of what is used: fold it into the database and cut it to zero
        # (an fsync, paid only while the disk is this full), then look again.
        self._reclaim_wal()
        if self._free_bytes() >= self.disk_reserve_bytes:
            return self.cap_bytes
        return min(self.cap_bytes, self.depth_bytes)

    def _free_bytes(self) -> int:
        stat = os.statvfs(self._dir)  # ~1 us, once per transaction
        return stat.f_bavail * stat.f_frsize

    def _reclaim_wal(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # busy or full: the drop policy still holds
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _admit_each(self, items: list[NewEvent], sizes: list[int], cap: int) -> list[int | None]:
        """One item after the other through the drop policy (the cap is reached)."""
        db = self.db
        results: list[int | None] = []
        touched: set[str] = set()
        for item, size in zip(items, sizes, strict=True):
            keep, evict = admit(self.depth_bytes, size, cap, self.policy)
            if evict > 0:
                self._evict_oldest(int(evict))
            if not keep:
                self._bump("dropped_events", 1)
                self._bump("dropped_bytes", size)
                results.append(None)
                continue
            seq = self._last_seq.get(item.stream, 0) + 1
            self._last_seq[item.stream] = seq
            touched.add(item.stream)
            db.execute(_INSERT, (item.stream, seq, item.ts, item.kind, item.body, size))
            self.depth_events += 1
            self.depth_bytes += size
            results.append(seq)
        self._save_last_seqs(touched)
        return results

    def _save_last_seqs(self, streams: set[str]) -> None:
        self.db.executemany(
            "INSERT INTO streams (stream, last_seq) VALUES (?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq",
            [(s, self._last_seq[s]) for s in streams],
        )

    def oldest(self, max_events: int, max_bytes: int) -> list[StoredEvent]:
        """The oldest events, at most `max_events` and about `max_bytes` (at least one)."""
        rows = self.db.execute(
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

    def oldest_ts(self) -> float | None:
        row = self.db.execute("SELECT ts FROM events ORDER BY id LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def remove_through(self, last_id: int) -> None:
        """Forget every event up to `last_id`: an acknowledged batch is always the oldest."""
        try:
            self._remove_through(last_id)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            # A delete needs room in the WAL too: make some, then try once more.
            self._reclaim_wal()
            self._remove_through(last_id)

    def _remove_through(self, last_id: int) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            removed, freed = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events WHERE id <= ?", (last_id,)
            ).fetchone()
            db.execute("DELETE FROM events WHERE id <= ?", (last_id,))
            self._bump("uploaded_events", removed)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._mirror()
            raise
        self.depth_events -= removed
        self.depth_bytes -= freed

    def close(self) -> None:
        self.db.close()

    def _evict_oldest(self, nbytes: int) -> None:
        freed, last = 0, None
        for event_id, size in self.db.execute("SELECT id, size FROM events ORDER BY id"):
            if freed >= nbytes:
                break
            last, freed = event_id, freed + size
        if last is None:
            return
        (count,) = self.db.execute("SELECT COUNT(*) FROM events WHERE id <= ?", (last,)).fetchone()
        self.db.execute("DELETE FROM events WHERE id <= ?", (last,))
        self.depth_events -= count
        self.depth_bytes -= freed
        self._bump("dropped_events", count)
        self._bump("dropped_bytes", freed)

    def _bump(self, name: str, by: int) -> None:
        self._counters[name] = self._counters.get(name, 0) + by
        self.db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, self._counters[name]),
        )

    def _mirror(self) -> None:
        db = self.db
        self._last_seq = dict(db.execute("SELECT stream, last_seq FROM streams").fetchall())
        self._counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        count, total = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
        self.depth_events, self.depth_bytes = int(count), int(total)
