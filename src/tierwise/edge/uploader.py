"""Store-and-forward: move outbox events to the cloud in batches, backing off while it is away.

Oldest events go first, so each stream reaches the cloud in seq order. An event leaves the
outbox only after the cloud acknowledged the batch that carried it; a batch whose answer was
lost (timeout, reset, crash) is sent again, and the cloud's deduplication by
(site, stream, seq) makes that harmless. Failed attempts wait with exponential backoff and
full jitter (a random wait between 0 and the cap), so a fleet coming back from one outage
does not knock on the cloud's door in lockstep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
from dataclasses import dataclass

from tierwise.edge.link import CloudAuthError, CloudLink, CloudRefusedError
from tierwise.edge.outbox import Outbox, StoredEvent
from tierwise.errors import LinkError
from tierwise.rules.clock import Clock
from tierwise.wire import MAX_TELEMETRY_BATCH

log = logging.getLogger(__name__)

DEFAULT_BATCH_EVENTS = 500  # a batch is assembled on the event loop: keep each step short
DEFAULT_BATCH_BYTES = 1024 * 1024  # well below the cloud's default 8 MiB body limit
# A batch waits at most this long to fill up: each batch costs a request's headers on the
# WAN, and larger batches compress better; the cloud's view lags by as much.
DEFAULT_INTERVAL_S = 2.0
DEFAULT_BACKOFF_BASE_S = 0.25
DEFAULT_BACKOFF_CAP_S = 10.0
DEFAULT_UPLOAD_TIMEOUT_S = 15.0
# After this many failures in a row the uploader sends one event at a time until one gets
# through: a request lost in an outage may still be delivered when the link returns (TCP
# retransmits it), so every full batch sent into an outage becomes duplicates later.
PROBE_AFTER_FAILURES = 2


@dataclass
class UploadStats:
    """What the uploader has done since the agent started."""

    batches: int = 0
    events_sent: int = 0
    accepted: int = 0
    duplicates: int = 0  # the cloud already had them: an earlier answer was lost
    failures: int = 0
    rejected_events: int = 0  # refused by the cloud as malformed (422) and given up on
    consecutive_failures: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class UploadPolicy:
    """How big batches are and how the uploader waits between attempts."""

    batch_events: int = DEFAULT_BATCH_EVENTS
    batch_bytes: int = DEFAULT_BATCH_BYTES
    interval_s: float = DEFAULT_INTERVAL_S
    backoff_base_s: float = DEFAULT_BACKOFF_BASE_S
    backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S
    timeout_s: float = DEFAULT_UPLOAD_TIMEOUT_S

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(failures - 1))]."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(failures - 1, 0))
        return rng.uniform(0.0, ceiling)


class Uploader:
    """Drains an `Outbox` into `CloudLink.telemetry`, forever or until told to stop."""

    def __init__(
        self,
        outbox: Outbox,
        link: CloudLink,
        site: str,
        clock: Clock,
        policy: UploadPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self.link = link
        self.site = site
        self.clock = clock
        self.policy = policy or UploadPolicy()
        self.rng = rng or random.Random()
        self.stats = UploadStats()
        self._batch_events = min(self.policy.batch_events, MAX_TELEMETRY_BATCH)
        self._wake = asyncio.Event()
        self._probed = False

    def nudge(self) -> None:
        """New events are waiting: upload without waiting for the interval (when it pays)."""
        if self.outbox.depth_events >= self._batch_events:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Upload until `stop` is set; never raises for a cloud that is away."""
        while not stop.is_set():
            sent = await self.upload_once()
            if sent is None:  # failed: back off, but wake up for a stop
                delay = self.policy.backoff(self.stats.consecutive_failures, self.rng)
                await _wait(stop, delay)
            elif self._probed:
                continue  # a probe got through: send the backlog at once
            elif sent < self._batch_events:  # drained: wait for more to gather
                self._wake.clear()
                await _wait_any(stop, self._wake, self.policy.interval_s)

    async def flush(self, deadline: float) -> bool:
        """Upload until the outbox is empty (True) or the clock passes `deadline` (False)."""
        while self.outbox.counts().depth_events > 0:
            left = self.clock.remaining(deadline)
            if left <= 0:
                return False
            try:
                sent = await asyncio.wait_for(self.upload_once(), left)
            except TimeoutError:
                return False
            if sent is None:
                delay = self.policy.backoff(self.stats.consecutive_failures, self.rng)
                if delay >= self.clock.remaining(deadline):
                    return False
                await self.clock.asleep(delay)
        return True

    async def upload_once(self) -> int | None:
        """Send the oldest batch: the number of events acknowledged, or None on failure."""
        probing = self.stats.consecutive_failures >= PROBE_AFTER_FAILURES
        self._probed = probing
        size = 1 if probing else self._batch_events
        batch = await self.outbox.oldest_async(size, self.policy.batch_bytes)
        if not batch:
            return 0
        payload = batch_json(batch)
        try:
            ack = await asyncio.wait_for(
                self.link.telemetry(self.site, payload), self.policy.timeout_s
            )
        except (LinkError, TimeoutError, CloudAuthError) as exc:
            self._failed(exc)
            return None
        except CloudRefusedError as exc:
            if exc.status == 413 and len(batch) > 1:  # too big for the cloud: halve and retry
                self._batch_events = max(1, len(batch) // 2)
                self._failed(exc)
                return None
            if exc.status == 422 and len(batch) == 1:  # this one event is refused for good
                log.error("cloud refused event %s/%s: %s", batch[0].stream, batch[0].seq, exc)
                self.stats.rejected_events += 1
                await self.outbox.remove_async(batch[:1])
                return 1
            if exc.status == 422:  # find the culprit: send smaller batches
                self._batch_events = max(1, len(batch) // 2)
            self._failed(exc)
            return None
        try:
            await self.outbox.remove_async(batch)
        except sqlite3.Error as exc:
            # The cloud has the batch but the outbox could not forget it (a full disk): keep
            # uploading, this batch comes again as duplicates, which the cloud drops.
            self._failed(exc)
            return None
        self.stats.batches += 1
        self.stats.events_sent += len(batch)
        self.stats.accepted += ack.accepted
        self.stats.duplicates += ack.duplicates
        self.stats.consecutive_failures = 0
        self._batch_events = min(self.policy.batch_events, MAX_TELEMETRY_BATCH)
        return len(batch)

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.consecutive_failures += 1
        self.stats.last_error = str(exc) or type(exc).__name__
        log.debug("telemetry upload failed (%d in a row): %s", self.stats.consecutive_failures, exc)


def batch_json(events: list[StoredEvent]) -> bytes:
    """The JSON of a `TelemetryBatch`, spliced from the stored body text: parsing and
    re-serializing a thousand bodies would block the event loop ~7x longer."""
    parts = [
        f'{{"stream":{json.dumps(e.stream)},"seq":{int(e.seq)},"ts":{float(e.ts)!r},'
        f'"kind":{json.dumps(e.kind)},"body":{e.body}}}'
        for e in events
    ]
    return ('{"events":[' + ",".join(parts) + "]}").encode()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
