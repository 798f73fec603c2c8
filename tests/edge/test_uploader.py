"""The uploader delivers every stored event once, in order, through outages and lost answers."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

from tierwise.edge.link import CloudLink
from tierwise.edge.memory_link import InMemoryCloud, InMemoryCloudLink
from tierwise.edge.outbox import Outbox, StoredEvent
from tierwise.edge.uploader import Uploader, UploadPolicy, batch_json
from tierwise.errors import LinkError
from tierwise.rules.clock import RealClock
from tierwise.wire import TelemetryAck, TelemetryBatch

FAST = UploadPolicy(batch_events=50, interval_s=0.01, backoff_base_s=0.01, backoff_cap_s=0.05)


class LosesAnswers(InMemoryCloudLink):
    """Delivers the batch, then loses the answer every other time (a timeout after ingest)."""

    def __init__(self, cloud: InMemoryCloud) -> None:
        super().__init__(cloud)
        self.lost = 0

    async def telemetry(self, site: str, batch: bytes) -> TelemetryAck:
        ack = await super().telemetry(site, batch)
        if self.calls % 2:
            self.lost += 1
            raise LinkError("answer lost on the way back")
        return ack


def _fill(box: Outbox, n: int, streams: tuple[str, ...] = ("a", "b")) -> None:
    for i in range(n):
        box.append(streams[i % len(streams)], "k", {"i": i}, float(i))


async def _drain(uploader: Uploader, timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(uploader.run(stop))
    for _ in range(int(timeout / 0.01)):
        if uploader.outbox.counts().depth_events == 0:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task


def _uploader(box: Outbox, link: CloudLink) -> Uploader:
    return Uploader(box, link, "s1", RealClock(), FAST, random.Random(1))


def test_everything_arrives_once_and_in_stream_order(tmp_path: Path) -> None:
    cloud, box = InMemoryCloud(), Outbox(tmp_path / "o.db")
    _fill(box, 230)
    uploader = _uploader(box, cloud.link())
    asyncio.run(_drain(uploader))
    assert [e.seq for e in cloud.stream("s1", "a")] == list(range(1, 116))
    assert [e.body["i"] for e in cloud.stream("s1", "b")] == list(range(1, 230, 2))
    assert box.counts().depth_events == 0
    assert uploader.stats.batches == 5
    box.close()


def test_lost_answers_cause_duplicates_the_cloud_removes_not_losses(tmp_path: Path) -> None:
    cloud, box = InMemoryCloud(), Outbox(tmp_path / "o.db")
    _fill(box, 200)
    link = LosesAnswers(cloud)
    uploader = _uploader(box, link)
    asyncio.run(_drain(uploader))
    delivered = cloud.stream("s1", "a") + cloud.stream("s1", "b")
    print(f"delivered {len(delivered)}, duplicates removed {cloud.duplicates}, lost {link.lost}")
    assert len(delivered) == 200
    assert cloud.duplicates == 50 * link.lost
    box.close()


def test_an_outage_is_waited_out_with_backoff(tmp_path: Path) -> None:
    cloud, box = InMemoryCloud(down=True), Outbox(tmp_path / "o.db")
    _fill(box, 60)
    uploader = _uploader(box, cloud.link())

    async def body() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(uploader.run(stop))
        await asyncio.sleep(0.3)
        assert box.counts().depth_events == 60  # nothing lost while down
        failures = uploader.stats.failures
        assert 3 <= failures < 60  # backed off, did not spin
        cloud.down = False
        for _ in range(200):
            if box.counts().depth_events == 0:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(body())
    assert len(cloud.stream("s1", "a")) == 30
    assert uploader.stats.consecutive_failures == 0
    box.close()


def test_flush_gives_up_at_its_deadline_and_keeps_the_rest(tmp_path: Path) -> None:
    cloud, box = InMemoryCloud(down=True), Outbox(tmp_path / "o.db")
    _fill(box, 10)
    uploader = _uploader(box, cloud.link())
    clock = RealClock()

    async def body() -> bool:
        return await uploader.flush(clock.deadline(0.2))

    started = clock.now()
    assert asyncio.run(body()) is False
    assert clock.now() - started < 0.5
    assert box.counts().depth_events == 10
    box.close()


class CannotForget(Outbox):
    """An outbox whose first delete fails, as one on a full disk does."""

    failed = 0

    async def remove_async(self, batch: list[StoredEvent]) -> None:
        if not self.failed:
            self.failed += 1
            raise sqlite3.OperationalError("database or disk is full")
        await super().remove_async(batch)


def test_a_batch_the_outbox_cannot_forget_is_sent_again_not_fatal(tmp_path: Path) -> None:
    cloud, box = InMemoryCloud(), CannotForget(tmp_path / "o.db")
    _fill(box, 40)
    uploader = _uploader(box, cloud.link())
    asyncio.run(_drain(uploader))
    assert box.failed == 1
    assert len(cloud.stream("s1", "a") + cloud.stream("s1", "b")) == 40
    assert cloud.duplicates == 40  # the first batch (all 40) came again
    assert box.counts().depth_events == 0
    box.close()


def test_backoff_is_full_jitter_under_a_cap() -> None:
    policy = UploadPolicy(backoff_base_s=0.5, backoff_cap_s=4.0)
    rng = random.Random(3)
    waits = [policy.backoff(10, rng) for _ in range(2000)]
    assert max(waits) <= 4.0
    assert min(waits) < 0.2  # jitter reaches down to zero
    assert 1.6 < sum(waits) / len(waits) < 2.4  # uniform on [0, 4]


def test_batch_json_is_exactly_the_wire_batch(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.append("s-1", "prediction", {"x": [1.5, -2], "note": 'quote " and \\ slash'}, 1.7e9 + 0.25)
    box.append("s-2", "k", {}, 3.0)
    stored = box.oldest(10, 10**6)
    batch = TelemetryBatch.model_validate_json(batch_json(stored))
    assert [(e.stream, e.seq, e.ts, e.kind) for e in batch.events] == [
        ("s-1", 1, 1.7e9 + 0.25, "prediction"),
        ("s-2", 1, 3.0, "k"),
    ]
    assert batch.events[0].body == {"x": [1.5, -2], "note": 'quote " and \\ slash'}
    box.close()
