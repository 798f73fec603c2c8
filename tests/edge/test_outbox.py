"""The outbox keeps what it acknowledged, across restarts and SIGKILL, within its byte cap."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tierwise.edge.outbox import Durability, Outbox
from tierwise.rules.outbox import DropPolicy


def test_seqs_count_per_stream_and_survive_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", durability=Durability.POWER)  # the writer-thread path
    assert [box.append("a", "k", {"i": i}, 1.0) for i in range(3)] == [1, 2, 3]
    assert box.append("b", "k", {}, 1.0) == 1
    old = box.oldest(10, 10**6)
    box.remove(old[:2])  # uploaded: gone, but their numbers stay used
    box.close()
    box = Outbox(tmp_path / "o.db")
    assert box.append("a", "k", {}, 2.0) == 4
    assert [(e.stream, e.seq) for e in box.oldest(10, 10**6)] == [("a", 3), ("b", 1), ("a", 4)]
    counts = box.counts()
    assert counts.depth_events == 3
    assert counts.uploaded_events == 2
    box.close()


def test_oldest_respects_the_byte_budget_but_returns_at_least_one(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    for _ in range(5):
        box.append("s", "k", {"x": "y" * 100}, 0.0)
    size = box.oldest(1, 10**6)[0].size
    assert len(box.oldest(10, 3 * size)) == 3
    assert len(box.oldest(10, 1)) == 1
    box.close()


def test_drop_oldest_evicts_the_head_and_counts_it(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", cap_bytes=1000, policy=DropPolicy.DROP_OLDEST)
    seqs = [box.append("s", "k", {"pad": "x" * 70}, 0.0) for _ in range(30)]
    assert seqs == list(range(1, 31))  # every new event is kept
    counts = box.counts()
    assert counts.depth_bytes <= 1000
    kept = [e.seq for e in box.oldest(100, 10**6)]
    assert kept == list(range(31 - len(kept), 31))  # the freshest survive
    assert counts.dropped_events == 30 - len(kept)
    assert counts.dropped_bytes > 0
    box.close()
    reopened = Outbox(tmp_path / "o.db", cap_bytes=1000)
    assert reopened.counts().dropped_events == counts.dropped_events  # counted on disk
    reopened.close()


def test_drop_newest_refuses_what_does_not_fit_and_counts_it(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", cap_bytes=1000, policy=DropPolicy.DROP_NEWEST)
    seqs = [box.append("s", "k", {"pad": "x" * 70}, 0.0) for _ in range(30)]
    kept = [s for s in seqs if s is not None]
    assert kept == list(range(1, len(kept) + 1))  # the earliest survive, no gap among them
    assert seqs[len(kept) :] == [None] * (30 - len(kept))
    assert box.counts().dropped_events == 30 - len(kept)
    box.close()


def test_a_disk_below_its_reserve_counts_as_full_and_the_policy_decides(tmp_path: Path) -> None:
    """The real disk, with a reserve it cannot meet: nothing more is stored than is queued."""
    box = Outbox(tmp_path / "o.db")
    assert [box.append("s", "k", {"i": i}, 0.0) for i in range(3)] == [1, 2, 3]
    box.close()
    full = 2**62
    newest = Outbox(tmp_path / "o.db", policy=DropPolicy.DROP_NEWEST, disk_reserve_bytes=full)
    assert newest.append("s", "k", {"i": 3}, 0.0) is None  # refused at the door, counted
    assert newest.counts().dropped_events == 1
    newest.close()
    oldest = Outbox(tmp_path / "o.db", policy=DropPolicy.DROP_OLDEST, disk_reserve_bytes=full)
    assert oldest.append("s", "k", {"i": 4}, 0.0) == 4  # the head made room for it
    assert [e.seq for e in oldest.oldest(10, 10**6)] == [2, 3, 4]
    assert oldest.counts().dropped_events == 2
    oldest.close()


@pytest.mark.parametrize("durability", list(Durability))
def test_concurrent_appends_get_distinct_seqs(tmp_path: Path, durability: Durability) -> None:
    box = Outbox(tmp_path / "o.db", durability=durability)

    async def many() -> list[int | None]:
        return await asyncio.gather(
            *(box.append_async("s", "k", {"i": i}, 0.0) for i in range(300))
        )

    seqs = asyncio.run(many())
    assert sorted(s for s in seqs if s is not None) == list(range(1, 301))
    box.close()


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tierwise.edge.outbox import Durability, Outbox
    box = Outbox(Path(sys.argv[1]), durability=Durability(sys.argv[2]))
    i = 0
    while True:
        seq = box.append("s", "k", {"i": i}, 0.0)
        print(seq, flush=True)  # the acknowledgement: printed only after the commit
        i += 1
    """
)


@pytest.mark.parametrize("durability", list(Durability))
def test_every_acknowledged_event_survives_sigkill(tmp_path: Path, durability: Durability) -> None:
    path = tmp_path / "o.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), durability.value],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = [int(proc.stdout.readline()) for _ in range(300)]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    acknowledged += [int(line) for line in proc.stdout.read().split()]
    box = Outbox(path)
    stored = {e.seq for e in box.oldest(10**6, 10**9)}
    print(f"acknowledged {len(acknowledged)}, stored {len(stored)}")
    assert set(acknowledged) <= stored
    assert box.append("s", "k", {}, 0.0) == max(stored) + 1  # numbering resumes after the kill
    box.close()


def test_a_closed_outbox_refuses_appends(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.close()
    with pytest.raises(RuntimeError, match="closed"):
        box.append("s", "k", {}, 0.0)


def test_the_appends_of_one_loop_turn_share_a_transaction(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")  # durability=process: grouped by loop turn

    async def turns() -> tuple[list[int | None], int | None]:
        together = await asyncio.gather(
            *(box.append_async("s", "k", {"i": i}, 0.0) for i in range(50))
        )
        alone = await box.append_async("s", "k", {"i": 50}, 0.0)  # nothing else queued
        return list(together), alone

    together, alone = asyncio.run(turns())
    assert together == list(range(1, 51))
    assert alone == 51
    assert box.largest_group == 50
    assert [e.seq for e in box.oldest(100, 10**6)] == list(range(1, 52))
    box.close()


def test_an_append_still_queued_when_the_outbox_closes_is_refused_not_acknowledged(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.db")

    async def close_first() -> None:
        pending = asyncio.ensure_future(box.append_async("s", "k", {}, 0.0))
        await asyncio.sleep(0)  # submitted; its commit waits for the next turn
        box.close()
        with pytest.raises(RuntimeError, match="closed"):
            await pending

    asyncio.run(close_first())
    reopened = Outbox(tmp_path / "o.db")
    assert reopened.counts().depth_events == 0
    reopened.close()
