"""What the fault tests share: a site's real outbox and uploader under load, and the tally.

`EdgeLoad` runs the edge's own store-and-forward path (`Outbox` + `Uploader` + `HttpCloudLink`,
as `tierwise edge` wires them) on an event loop in a thread, appending events at a steady
pace while the test breaks something. An event counts as *acknowledged* once the outbox gave
it a seq: that is the moment the agent answers its device. The `Tally` then compares what
the cloud holds with what was acknowledged.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tierwise.cloud.client import CloudAdmin
from tierwise.edge.http_link import HttpCloudLink
from tierwise.edge.outbox import DEFAULT_CAP_BYTES, Outbox
from tierwise.edge.outbox_store import DEFAULT_DISK_RESERVE_BYTES
from tierwise.edge.uploader import Uploader, UploadPolicy
from tierwise.rules.clock import RealClock

# Small batches, short waits: many requests cross the fault while it lasts.
FAST = UploadPolicy(
    batch_events=100, interval_s=0.05, backoff_base_s=0.05, backoff_cap_s=0.5, timeout_s=5.0
)
STREAMS = ("temperature", "vibration")

TALLIES: list[Tally] = []  # printed at the end of the session by conftest.py


@dataclass
class Tally:
    """Acknowledged vs delivered vs duplicates for one fault; `lost` must be 0."""

    fault: str
    acknowledged: int
    delivered: int
    duplicates: int  # sent again (an answer was lost) and recognised by the cloud
    stored_twice: int  # the same (stream, seq) held more than once: must be 0
    dropped: int = 0  # removed by the outbox's stated drop policy, counted on the edge
    unexpected: int = 0  # held by the cloud but never acknowledged: must be 0
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.acknowledged - self.delivered - self.dropped

    def line(self) -> str:
        extra = "".join(f", {k} {v}" for k, v in self.notes.items())
        return (
            f"{self.fault}: acknowledged {self.acknowledged}, delivered {self.delivered}, "
            f"duplicates {self.duplicates}, dropped {self.dropped}, lost {self.lost}, "
            f"stored twice {self.stored_twice}, unexpected {self.unexpected}{extra}"
        )

    def check(self) -> None:
        """Record the tally for the session summary, print it, and insist nothing was lost."""
        TALLIES.append(self)
        print(self.line())
        assert self.lost == 0, self.line()
        assert self.stored_twice == 0, self.line()
        assert self.unexpected == 0, self.line()


class EdgeLoad:
    """One site appending `total` events at `rate` per second while its uploader drains."""

    def __init__(
        self,
        cloud_url: str,
        site: str,
        token: str,
        outbox_path: Path,
        total: int = 3000,
        rate: float = 1500.0,
        cap_bytes: int = DEFAULT_CAP_BYTES,
        policy: UploadPolicy = FAST,
        body_bytes: int = 0,
        disk_reserve_bytes: int = DEFAULT_DISK_RESERVE_BYTES,
    ) -> None:
        self.cloud_url, self.site, self.token = cloud_url, site, token
        self.outbox_path, self.cap_bytes, self.policy = outbox_path, cap_bytes, policy
        self.total, self.rate = total, rate
        self.padding, self.disk_reserve_bytes = "x" * body_bytes, disk_reserve_bytes
        self.acked: dict[str, set[int]] = defaultdict(set)
        self.refused = 0  # append refused by the drop policy: never acknowledged
        self.failed = 0  # append raised (e.g. a full disk): never acknowledged
        self.appended = threading.Event()  # half of the events are in: time to break things
        self.all_appended = threading.Event()
        self.done = threading.Event()
        self.drained = False
        self.last_state = ""  # the outbox's counts and the uploader's last error, at the end
        self.dropped = 0
        self.cloud_duplicates = 0
        self.upload_failures = 0
        self._thread = threading.Thread(target=self._run, name="edge-load", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> EdgeLoad:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.wait(60)

    def wait(self, timeout: float) -> None:
        """Until every event is appended and the outbox is drained (or `timeout`)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the edge load did not finish in time"
        if self._error is not None:
            raise self._error

    @property
    def acknowledged(self) -> int:
        return sum(len(s) for s in self.acked.values())

    def tally(self, fault: str, admin: CloudAdmin, **notes: int) -> Tally:
        """Compare what the cloud holds with what was acknowledged."""
        delivered = stored_twice = unexpected = 0
        for stream in STREAMS:
            seqs = [e.seq for e in admin.events(self.site, stream)]
            distinct = set(seqs)
            stored_twice += len(seqs) - len(distinct)
            delivered += len(distinct & self.acked[stream])
            unexpected += len(distinct - self.acked[stream])
        return Tally(
            fault,
            acknowledged=self.acknowledged,
            delivered=delivered,
            duplicates=self.cloud_duplicates,
            stored_twice=stored_twice,
            dropped=self.dropped,
            unexpected=unexpected,
            notes={"upload failures": self.upload_failures, "append errors": self.failed, **notes},
        )

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the test in `wait`
            self._error = exc

    async def _main(self, drain_timeout_s: float = 40.0) -> None:
        outbox = Outbox(
            self.outbox_path,
            cap_bytes=self.cap_bytes,
            disk_reserve_bytes=self.disk_reserve_bytes,
        )
        link = HttpCloudLink(self.cloud_url, self.token, timeout_s=self.policy.timeout_s)
        uploader = Uploader(outbox, link, self.site, RealClock(), self.policy, random.Random(7))
        stop = asyncio.Event()
        task = asyncio.create_task(uploader.run(stop))
        per_tick = max(1, int(self.rate / 100))
        try:
            for i in range(self.total):
                stream = STREAMS[i % len(STREAMS)]
                try:
                    body = {"i": i, "pad": self.padding} if self.padding else {"i": i}
                    seq = await outbox.append_async(stream, "reading", body, time.time())
                except Exception:
                    self.failed += 1
                    seq = None
                else:
                    if seq is None:
                        self.refused += 1
                if seq is not None:
                    self.acked[stream].add(seq)
                uploader.nudge()
                if i == self.total // 2:
                    self.appended.set()
                if (i + 1) % per_tick == 0:
                    await asyncio.sleep(0.01)
            self.all_appended.set()
            deadline = time.monotonic() + drain_timeout_s
            while outbox.depth_events > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            self.drained = outbox.depth_events == 0
        finally:
            stop.set()
            await task
            await link.close()
            counts = outbox.counts()
            # Dropped by the policy after acknowledgement: evicted, not refused at the door.
            self.dropped = counts.dropped_events - self.refused
            self.cloud_duplicates = uploader.stats.duplicates
            self.upload_failures = uploader.stats.failures
            self.last_state = f"{counts}, last upload error: {uploader.stats.last_error!r}"
            outbox.close()
            self.done.set()
