"""PostgreSQL restarted (immediate stop: crash recovery) under telemetry load, with two cloud
replicas behind HAProxy on it: requests fail while it is away, the uploader sends them again,
the replicas' pools reconnect, and nothing acknowledged is lost or stored twice."""

from __future__ import annotations

from pathlib import Path

from tests.faults.support import EdgeLoad
from tests.faults.throwaway_postgres import throwaway_postgres
from tests.package.support import make_keys
from tests.up.test_balancer import require_haproxy

from tierwise.cloud.client import CloudAdmin
from tierwise.up.balancer import start_cloud_replicas
from tierwise.up.components import Tokens
from tierwise.up.processes import Supervisor


def test_restarting_postgres_under_load_loses_nothing(tmp_path: Path) -> None:
    require_haproxy()
    keys = make_keys(tmp_path / "keys")
    tokens = Tokens.issue(["s1"])
    with throwaway_postgres() as pg, Supervisor(tmp_path / "logs") as sup:
        _, balancer = start_cloud_replicas(sup, tmp_path, tokens, keys.public, 2, pg.url)
        load = EdgeLoad(balancer.url, "s1", tokens.sites["s1"], tmp_path / "outbox.db")
        with load:
            assert load.appended.wait(30), "the load never got halfway"
            pg.restart_immediately()
        assert load.drained, "the outbox did not drain after the restart: " + load.last_state
        load.tally("PostgreSQL restart", CloudAdmin(balancer.url, tokens.admin)).check()
