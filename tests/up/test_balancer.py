"""Cloud replicas behind HAProxy: requests spread over them, a change made through one wakes a
long-poll held by another, and killing a replica loses no request."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.cloud.conftest import DbTarget, postgres_schema
from tests.cloud.packages import build
from tests.package.support import make_keys

from tierwise.cloud.client import CloudAdmin
from tierwise.spec.tiers import Placement
from tierwise.up.balancer import haproxy_config, start_cloud_replicas
from tierwise.up.components import Tokens
from tierwise.up.processes import Supervisor
from tierwise.wire import FeatureAssignment

REPLICA = "Tierwise-Replica"


def require_haproxy() -> None:
    """Skip without HAProxy (`make setup` installs it), but fail under CI, which must run this."""
    if shutil.which("haproxy"):
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("HAProxy needed under CI (make setup installs it)")
    pytest.skip("HAProxy is not installed (apt-get install haproxy, or make setup)")


@pytest.fixture
def schema() -> Iterator[DbTarget]:
    with postgres_schema() as target:
        yield target


def test_the_config_checks_each_replica_and_outlasts_a_long_poll() -> None:
    config = haproxy_config(9000, {"cloud-1": "http://127.0.0.1:8001"})
    assert "bind 127.0.0.1:9000" in config
    assert "server cloud-1 127.0.0.1:8001 check" in config
    assert "option httpchk GET /healthz" in config
    assert "timeout server 90s" in config  # the cloud holds a poll at most 60 s


def test_replicas_behind_haproxy_share_the_work_and_survive_a_kill(
    schema: DbTarget, tmp_path: Path
) -> None:
    require_haproxy()
    keys = make_keys(tmp_path / "keys")
    tokens = Tokens.issue(["s1"])
    with Supervisor(tmp_path / "logs") as sup:
        replicas, balancer = start_cloud_replicas(
            sup, tmp_path, tokens, keys.public, 2, schema.url, schema.schema
        )
        url = balancer.url
        answered = {httpx.get(url + "/healthz", timeout=10).headers[REPLICA] for _ in range(8)}
        assert answered == {"cloud-1", "cloud-2"}

        admin = CloudAdmin(url, tokens.admin)
        for version in (1, 2):
            admin.upload_package(build(tmp_path / f"wine-{version}", keys, "wine", version))

        def assign(through: str, version: int) -> None:
            CloudAdmin(through, tokens.admin).assign(
                "s1",
                "quality",
                FeatureAssignment(
                    package="wine", version=version, placement=Placement.EDGE, deadline_ms=100
                ),
            )

        assign(url, 1)
        site = {"Authorization": f"Bearer {tokens.sites['s1']}"}
        first = httpx.get(url + "/v1/sites/s1/deployment", headers=site, timeout=10)
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(
                httpx.get,
                url + "/v1/sites/s1/deployment",
                params={"wait": 30},
                headers=site | {"If-None-Match": first.headers["ETag"]},
                timeout=60,
            )
            deadline = time.monotonic() + 10
            while (holder := _holder([r.url for r in replicas])) is None:
                assert time.monotonic() < deadline, "no replica held the poll"
                time.sleep(0.01)
            # The change goes through the other replica: only PostgreSQL NOTIFY can tell the
            # holder, a separate process, about it.
            assign(replicas[1 - holder].url, 2)
            woken = held.result(10)  # long before its 30 s
        assert woken.status_code == 200
        assert woken.json()["features"]["quality"]["version"] == 2

        replicas[0].signal(signal.SIGKILL)
        replicas[0].proc.wait(10)
        codes = [httpx.get(url + "/healthz", timeout=10) for _ in range(10)]
        assert [c.status_code for c in codes] == [200] * 10
        assert {c.headers[REPLICA] for c in codes} == {"cloud-2"}


def _holder(urls: list[str]) -> int | None:
    """The index of the replica holding a deployment poll now, if any."""
    for i, u in enumerate(urls):
        if "tierwise_cloud_deployment_polls_held 1.0" in httpx.get(u + "/metrics", timeout=5).text:
            return i
    return None
