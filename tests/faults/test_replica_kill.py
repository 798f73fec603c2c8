"""kill -9 of one cloud replica behind HAProxy while a site uploads: nothing acknowledged is
lost, nothing is stored twice; what HAProxy or the uploader sent again counts as duplicates."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
from tests.cloud.conftest import DbTarget
from tests.faults.support import EdgeLoad
from tests.package.support import make_keys
from tests.up.test_balancer import require_haproxy

from tierwise.cloud.client import CloudAdmin
from tierwise.up.balancer import start_cloud_replicas
from tierwise.up.components import Tokens
from tierwise.up.processes import Supervisor


def test_killing_a_replica_under_load_loses_nothing(pg_schema: DbTarget, tmp_path: Path) -> None:
    require_haproxy()
    keys = make_keys(tmp_path / "keys")
    tokens = Tokens.issue(["s1"])
    with Supervisor(tmp_path / "logs") as sup:
        replicas, balancer = start_cloud_replicas(
            sup, tmp_path, tokens, keys.public, 2, pg_schema.url, pg_schema.schema
        )
        load = EdgeLoad(balancer.url, "s1", tokens.sites["s1"], tmp_path / "outbox.db")
        with load:
            assert load.appended.wait(30), "the load never got halfway"
            before_kill = _accepted(replicas[0].url)
            replicas[0].signal(signal.SIGKILL)
            replicas[0].proc.wait(10)
        assert load.drained, "the outbox did not drain through the surviving replica"
        admin = CloudAdmin(balancer.url, tokens.admin)
        load.tally("kill -9 of a replica", admin, **{"ingested by the victim": before_kill}).check()
        assert before_kill > 0, "the killed replica had taken no telemetry: the kill proved nothing"


def _accepted(url: str) -> int:
    """Telemetry events one replica stored (its own /metrics, not the balancer's pick)."""
    text = httpx.get(url + "/metrics", timeout=5).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("tierwise_cloud_telemetry_events_total{") and "accepted" in line
    )
