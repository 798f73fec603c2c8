"""Wake held deployment polls when a site's deployment may have changed, on any replica.

A long-poll (`GET /v1/sites/{site}/deployment?wait=30`) waits on an `asyncio.Event` here, not
on the database: a held poll costs no connection and no query. Two things set it:

- a commit in this process that announced the site (`Database.announce`, via `on_commit`);
- on PostgreSQL, a NOTIFY from any replica's commit, read by one LISTEN connection per
  replica on a thread of its own. Notices are transactional (sent at commit, never for a
  rolled-back change), and when that connection is lost and comes back every waiter is
  woken once, since notices sent meanwhile are gone.

Whenever no LISTEN connection is live (SQLite, whose other processes cannot notify this
one, or PostgreSQL between reconnects), `recheck_s` tells waiters to re-read their
deployment every few seconds instead. A waiter always re-reads before answering, so a
spurious wake-up costs one query and never a wrong answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from tierwise.cloud.db import ANNOUNCE_CHANNEL, Database

log = logging.getLogger(__name__)

DEPLOYMENT = "deployment:"  # announced as "deployment:<site>"
RECHECK_S = 5.0  # how often a held poll re-reads its deployment while no LISTEN is live
LISTEN_POLL_S = 0.1  # how often the listener looks up from its socket to see if it must stop
RECONNECT_S = 1.0
LISTEN_START_S = 10.0  # how long `start` waits for the first LISTEN before serving without


def deployment_key(site: str) -> str:
    return DEPLOYMENT + site


class DeploymentChanges:
    """Per replica: which held polls wait for which site, and who wakes them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.released = False  # shutting down: held polls answer now, new ones are not held
        db.on_commit(self._announced)

    @property
    def recheck_s(self) -> float | None:
        """None while a LISTEN connection delivers every replica's changes; else RECHECK_S."""
        return None if self._listening.is_set() else RECHECK_S

    def waiting(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._waiters.values())

    def start(self) -> None:
        """Start listening (PostgreSQL with psycopg 3); returns once the first LISTEN is live."""
        if self.db.dialect != "postgresql" or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="deployment-changes", daemon=True)
        self._thread.start()
        if not self._listening.wait(LISTEN_START_S):
            log.warning("no LISTEN connection yet: held polls re-read every %g s", RECHECK_S)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(LISTEN_POLL_S * 4)
            self._thread = None
        self._listening.clear()

    @contextlib.contextmanager
    def watching(self, site: str) -> Iterator[asyncio.Event]:
        """An event set whenever `site`'s deployment may have changed, while the block runs.

        Register before reading the deployment, so a change between the read and the wait
        is not missed."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(site, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                waiters = self._waiters.get(site)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[site]

    def release(self) -> None:
        """Answer every held poll now and hold no more: a graceful shutdown waits for requests
        in flight, and a held poll would keep it waiting for up to its whole wait. Safe from a
        signal handler."""
        self.released = True
        self.wake(None)

    def wake(self, sites: Iterable[str] | None) -> None:
        """Wake the polls of `sites` (None: every poll). Safe from any thread."""
        with self._lock:
            if sites is None:
                entries = [e for w in self._waiters.values() for e in w]
            else:
                entries = [e for s in set(sites) for e in self._waiters.get(s, ())]
        for loop, event in entries:
            with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits there
                loop.call_soon_threadsafe(event.set)

    def _announced(self, what: set[str]) -> None:
        self.wake(w[len(DEPLOYMENT) :] for w in what if w.startswith(DEPLOYMENT))

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                connection, schema = self._listening_connection()
                prefix = f"{schema}:{DEPLOYMENT}"
            except Exception as exc:  # the database is away: retry, meanwhile waiters recheck
                log.warning("LISTEN for deployment changes failed (%s); retrying", exc)
                self._stop.wait(RECONNECT_S)
                continue
            try:
                self._listening.set()
                self.wake(None)  # notices sent while no one listened are lost: recheck once
                while not self._stop.is_set():
                    for notice in connection.notifies(timeout=LISTEN_POLL_S):
                        if notice.payload.startswith(prefix):
                            self.wake([notice.payload[len(prefix) :]])
            except Exception as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", exc)
            finally:
                self._listening.clear()
                with contextlib.suppress(Exception):
                    connection.close()
            self._stop.wait(RECONNECT_S)

    def _listening_connection(self) -> tuple[Any, str]:
        """A psycopg 3 connection of its own, in autocommit, listening on the channel; and
        the schema its notices must name (the search_path's, as `announce` sends it)."""
        fairy = self.db.engine.raw_connection()
        connection = fairy.driver_connection  # read before detach(), which forgets it
        fairy.detach()  # ours for good: never handed back to the pool in LISTEN state
        if connection is None or not hasattr(connection, "notifies"):
            fairy.close()
            self._stop.set()  # another driver (psycopg2): rechecks only, do not retry
            raise RuntimeError("LISTEN needs the psycopg 3 driver (postgresql+psycopg://)")
        connection.rollback()  # the pool's pre-ping may have opened a transaction
        connection.autocommit = True
        connection.execute(f"LISTEN {ANNOUNCE_CHANNEL}")
        row = connection.execute("SELECT current_schema()").fetchone()
        return connection, str(row[0])
