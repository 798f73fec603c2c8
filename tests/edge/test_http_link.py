"""The agent's HTTP link to the real cloud: telemetry batches travel gzip-compressed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from tests.package.support import make_keys

from tierwise.edge.http_link import COMPRESS_FROM_BYTES, HttpCloudLink
from tierwise.edge.outbox_store import StoredEvent
from tierwise.edge.uploader import batch_json
from tierwise.wan import WanConditions, WanProxy
from tierwise.wan.thread import ProxyThread

from .support import SITE, SITE_TOKEN, CloudProcess


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
