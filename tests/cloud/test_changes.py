"""Deployment long-polls: answered at once when stale, held while unchanged, woken by a change
made through this replica or another one, and let go when the wait is over.

"Another replica" is a second engine on the same database, as a second `tierwise cloud`
process would have: on PostgreSQL its commit reaches this one by NOTIFY, with the clock
standing still; on SQLite (no NOTIFY across engines) the held poll finds it at its next
recheck, which the test reaches by moving the virtual clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from tierwise.cloud.changes import RECHECK_S
from tierwise.cloud.db import Database, open_database
from tierwise.cloud.deployments import MAX_WAIT_S, WAIT_HEADER, assign_feature
from tierwise.spec.tiers import Placement
from tierwise.wire import FeatureAssignment

from .conftest import DbTarget
from .support import EPOCH, Cloud, register_rows

WAIT = 30.0
FEATURE = "quality"


def wine(version: int) -> FeatureAssignment:
    return FeatureAssignment(
        package="wine", version=version, placement=Placement.EDGE, deadline_ms=100
    )


@pytest.fixture
def site_a(cloud: Cloud, live: str) -> Iterator[httpx.Client]:
    """Site a's HTTP client on the live service, with wine v1 assigned to it."""
    register_rows(cloud.db, "wine", (1, 2))
    assign_feature(cloud.db, "a", FEATURE, wine(1), EPOCH)
    with httpx.Client(base_url=live, headers=cloud.site_a, timeout=30) as client:
        yield client


@pytest.fixture
def other_replica(db_target: DbTarget) -> Iterator[Database]:
    db = open_database(db_target.url, db_target.schema)
    yield db
    db.dispose()


def current_etag(client: httpx.Client) -> str:
    return str(client.get("/v1/sites/a/deployment").json()["etag"])


def held(cloud: Cloud) -> float:
    registry = cloud.client.app.state.cloud.metrics.registry  # type: ignore[attr-defined]
    return float(registry.get_sample_value("tierwise_cloud_deployment_polls_held") or 0)


def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (real time) for the server's thread to reach a state; the clock stands still."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the server never reached the expected state"
        time.sleep(0.005)


@contextmanager
def held_poll(
    cloud: Cloud, client: httpx.Client, wait: float = WAIT
) -> Iterator[tuple[str, Future[httpx.Response]]]:
    """Site a's long-poll with its current etag, once the server holds it; the etag and the
    answer to come."""
    etag = current_etag(client)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            client.get,
            "/v1/sites/a/deployment",
            params={"wait": wait},
            headers={"If-None-Match": f'"{etag}"'},
        )
        until(lambda: held(cloud) == 1)
        yield etag, answer


def test_a_stale_etag_is_answered_at_once(site_a: httpx.Client) -> None:
    answer = site_a.get(
        "/v1/sites/a/deployment", params={"wait": WAIT}, headers={"If-None-Match": '"old"'}
    )
    assert answer.status_code == 200
    assert answer.json()["features"][FEATURE]["version"] == 1
    assert answer.headers[WAIT_HEADER] == "30"


def test_an_unchanged_deployment_is_held_until_the_wait_is_over(
    cloud: Cloud, site_a: httpx.Client
) -> None:
    with held_poll(cloud, site_a) as (etag, answer):
        cloud.clock.advance(WAIT - 1)
        time.sleep(0.05)  # give a wrong early answer the chance to show
        assert not answer.done()
        cloud.clock.advance(1)
        response = answer.result(10)
    assert response.status_code == 304
    assert response.headers["ETag"] == f'"{etag}"'
    assert held(cloud) == 0


def test_a_change_through_this_replica_wakes_the_poll_at_once(
    cloud: Cloud, site_a: httpx.Client
) -> None:
    with held_poll(cloud, site_a) as (etag, answer):
        put = cloud.client.put(
            f"/v1/sites/a/features/{FEATURE}",
            json=wine(2).model_dump(mode="json"),
            headers=cloud.admin,
        )
        assert put.status_code == 200
        response = answer.result(10)  # the virtual clock never moved
    assert response.status_code == 200
    assert response.json()["features"][FEATURE]["version"] == 2
    assert response.json()["etag"] != etag


def test_a_change_through_another_replica_wakes_the_poll(
    cloud: Cloud, site_a: httpx.Client, other_replica: Database
) -> None:
    with held_poll(cloud, site_a) as (_etag, answer):
        assign_feature(other_replica, "a", FEATURE, wine(2), EPOCH)
        if other_replica.dialect == "sqlite":  # no NOTIFY: found at the next recheck
            time.sleep(0.05)
            assert not answer.done()
            cloud.clock.advance(RECHECK_S)
        response = answer.result(10)
    assert response.status_code == 200
    assert response.json()["features"][FEATURE]["version"] == 2


def test_a_change_to_another_site_leaves_the_poll_held(
    cloud: Cloud, site_a: httpx.Client, other_replica: Database
) -> None:
    with held_poll(cloud, site_a, wait=5) as (_etag, answer):
        assign_feature(other_replica, "b", FEATURE, wine(2), EPOCH)
        time.sleep(0.05)
        assert not answer.done()
        cloud.clock.advance(5)
        assert answer.result(10).status_code == 304


def test_a_stopping_replica_answers_its_held_polls_at_once(
    cloud: Cloud, site_a: httpx.Client
) -> None:
    with held_poll(cloud, site_a) as (etag, answer):
        cloud.client.app.state.cloud.changes.release()  # type: ignore[attr-defined]
        response = answer.result(10)  # the virtual clock never moved
    assert response.status_code == 304
    assert response.headers["ETag"] == f'"{etag}"'
    again = site_a.get(
        "/v1/sites/a/deployment", params={"wait": WAIT}, headers={"If-None-Match": f'"{etag}"'}
    )
    assert again.status_code == 304  # not held any more


def test_a_wait_beyond_the_cap_is_held_for_the_cap(cloud: Cloud, site_a: httpx.Client) -> None:
    with held_poll(cloud, site_a, wait=3600) as (_etag, answer):
        cloud.clock.advance(MAX_WAIT_S)
        response = answer.result(10)
    assert response.status_code == 304
    assert response.headers[WAIT_HEADER] == f"{MAX_WAIT_S:g}"


def test_without_wait_the_answer_is_immediate_and_says_nothing_of_holding(
    site_a: httpx.Client,
) -> None:
    etag = current_etag(site_a)
    response = site_a.get("/v1/sites/a/deployment", headers={"If-None-Match": f'"{etag}"'})
    assert response.status_code == 304
    assert WAIT_HEADER not in response.headers
