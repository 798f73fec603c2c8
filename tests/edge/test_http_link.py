"""The agent's HTTP link to the real cloud: telemetry batches travel gzip-compressed;
deployment polls are held by the cloud until the deployment changes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from tests.package.support import make_keys

from tierwise.edge.http_link import COMPRESS_FROM_BYTES, HttpCloudLink
from tierwise.edge.outbox_store import StoredEvent
from tierwise.edge.uploader import batch_json
from tierwise.spec.tiers import Placement
from tierwise.wan import WanConditions, WanProxy
from tierwise.wan.thread import ProxyThread
from tierwise.wire import FeatureAssignment

from .support import FEATURE, SITE, SITE_TOKEN, CloudProcess, build_package

HELD_METRIC = "tierwise_cloud_deployment_polls_held"


def answers(first: int, n: int) -> list[StoredEvent]:
    """Events shaped like the agent's prediction records."""
    return [
        StoredEvent(
            id=seq,
            stream="line-1",
            seq=seq,
            ts=1_790_000_000.0 + seq * 0.01,
            kind="prediction",
            body=(
                '{"feature":"digits","answered_by":"edge","model":"digits-small","version":1,'
                '"degraded":false,"reason":"local","rows":1,"hard_rows":0,"cloud_rows":0,'
                f'"escalated":false,"correct":1,"labelled":1,"latency_ms":{0.5 + seq % 7 / 13}}}'
            ),
            size=0,
        )
        for seq in range(first, first + n)
    ]


def test_batches_cross_the_wan_compressed_and_arrive_whole(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    with CloudProcess(tmp_path / "cloud", keys.public) as cloud:
        target = urlsplit(cloud.url)
        proxy = WanProxy((target.hostname or "127.0.0.1", target.port or 80), WanConditions())
        with ProxyThread(proxy) as wan:

            async def send() -> tuple[int, int]:
                link = HttpCloudLink(wan.url, SITE_TOKEN)
                try:
                    big = batch_json(answers(1, 400))
                    ack = await link.telemetry(SITE, big)
                    assert ack.accepted == 400
                    small = batch_json(answers(401, 1))
                    assert len(small) < COMPRESS_FROM_BYTES  # sent as it is
                    ack = await link.telemetry(SITE, small)
                    assert ack.accepted == 1
                finally:
                    await link.close()
                return len(big), wan.stats.bytes_up

            raw, on_the_wire = asyncio.run(send())
        stored = cloud.admin.events(SITE, "line-1")
    assert [e.seq for e in stored] == list(range(1, 402))
    assert stored[0].body["model"] == "digits-small"
    # Two requests with their headers crossed the WAN: far fewer bytes than the batch's JSON.
    assert on_the_wire < raw / 5, (on_the_wire, raw)


def test_a_deployment_poll_is_held_until_the_operator_changes_it(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    with CloudProcess(tmp_path / "cloud", keys.public) as cloud:
        admin = cloud.admin
        for version in (1, 2):
            package = build_package(tmp_path / f"p{version}", keys.private, "p", version)
            admin.upload_package(package)

        def assign(version: int) -> None:
            admin.assign(
                SITE,
                FEATURE,
                FeatureAssignment(
                    package="p", version=version, placement=Placement.EDGE, deadline_ms=100
                ),
            )

        def held() -> bool:
            text = httpx.get(cloud.url + "/metrics", timeout=10).text
            return f"{HELD_METRIC} 1.0" in text

        assign(1)

        async def follow() -> tuple[int, int, bool, float]:
            link = HttpCloudLink(cloud.url, SITE_TOKEN)
            try:
                first = await link.deployment(SITE, None, wait_s=30)  # nothing known: at once
                assert first is not None
                assert link.long_polls
                poll = asyncio.create_task(link.deployment(SITE, first.etag, wait_s=30))
                deadline = time.monotonic() + 10
                while not await asyncio.to_thread(held):
                    assert time.monotonic() < deadline, "the cloud never held the poll"
                await asyncio.to_thread(assign, 2)
                second = await asyncio.wait_for(poll, 10)  # well before the 30 s wait
                assert second is not None
                started = time.monotonic()
                unchanged = await link.deployment(SITE, second.etag, wait_s=0.3)
                return (
                    first.features[FEATURE].version,
                    second.features[FEATURE].version,
                    unchanged is None,
                    time.monotonic() - started,
                )
            finally:
                await link.close()

        before, after, unchanged, held_s = asyncio.run(follow())
    assert (before, after, unchanged) == (1, 2, True)
    assert held_s >= 0.3  # the unchanged answer came when the wait was over, not at once
