"""A load balancer that resets connections mid-request: a reset on the way in loses the request,
one on the way back loses the answer of a batch the cloud already stored. The uploader sends
both again; the cloud keeps each event once and counts the second copy as a duplicate."""

from __future__ import annotations

from pathlib import Path

from tests.edge.support import SITE, SITE_TOKEN, CloudProcess
from tests.faults.support import EdgeLoad
from tests.package.support import make_keys

from tierwise.wan.conditions import LossMode, WanConditions
from tierwise.wan.proxy import WanProxy
from tierwise.wan.thread import ProxyThread

RESET_SHARE = 0.25  # of the chunks crossing the proxy, either way


def test_connections_reset_mid_request_lose_nothing(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    with CloudProcess(tmp_path / "cloud", keys.public) as cloud:
        host, port = cloud.url.removeprefix("http://").split(":")
        resets = WanConditions(loss=RESET_SHARE, loss_mode=LossMode.RESET)
        with ProxyThread(WanProxy((host, int(port)), resets, seed=14)) as proxy:
            with EdgeLoad(proxy.url, SITE, SITE_TOKEN, tmp_path / "outbox.db") as load:
                pass
            stats = proxy.stats
        assert load.drained, "the outbox did not drain through the resetting proxy"
        tally = load.tally("connections reset mid-request", cloud.admin, resets=stats.resets)
        tally.check()
        assert stats.resets > 0
        # Some resets hit an answer after the cloud stored its batch: those came back as
        # duplicates, which the cloud recognised instead of storing twice.
        assert tally.duplicates > 0, tally.line()
