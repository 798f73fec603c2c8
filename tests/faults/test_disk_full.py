"""An edge's disk fills up while the cloud is away: the outbox stops short of the last byte and
drops by its stated policy (drop-oldest), counting every drop; once the cloud is back each
acknowledged event is either delivered or counted as dropped, never silently lost.

The full disk is real: a 4 MiB tmpfs mounted for the test (this needs root, as CI has)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.edge.support import SITE, SITE_TOKEN, CloudProcess
from tests.faults.support import EdgeLoad
from tests.package.support import make_keys

from tierwise.wan.conditions import OutageMode, WanConditions
from tierwise.wan.proxy import WanProxy
from tierwise.wan.thread import ProxyThread

DISK = "4m"
RESERVE_BYTES = 1024 * 1024
EVENTS = 12_000  # ~6 MB of telemetry: more than the disk holds
BODY_BYTES = 400


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of `DISK`, mounted for this test only."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        why = f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_full_disk_drops_by_policy_and_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    with CloudProcess(tmp_path / "cloud", keys.public) as cloud:
        host, port = cloud.url.removeprefix("http://").split(":")
        away = WanConditions(outage_mode=OutageMode.REFUSE)
        with ProxyThread(WanProxy((host, int(port)), away)) as proxy:
            proxy.set_down(True)
            load = EdgeLoad(
                proxy.url,
                SITE,
                SITE_TOKEN,
                small_disk / "outbox.db",
                total=EVENTS,
                rate=20_000,
                body_bytes=BODY_BYTES,
                disk_reserve_bytes=RESERVE_BYTES,
            )
            with load:
                assert load.all_appended.wait(30), "the events were never all appended"
                proxy.set_down(False)
        assert load.drained, "the outbox did not drain once the cloud was back: " + load.last_state
        tally = load.tally("disk full (4 MiB tmpfs)", cloud.admin)
        tally.check()
        assert tally.dropped > 0, "the disk never filled: " + tally.line()
        assert load.failed == 0, "appends failed instead of the drop policy: " + tally.line()
        # drop-oldest: what survived is the newest part of each stream, without a gap.
        for stream, acked in load.acked.items():
            held = [e.seq for e in cloud.admin.events(SITE, stream)]
            assert held == sorted(acked)[len(acked) - len(held) :], stream
