"""Staged rollout over real HTTP: the canary goes first; a regression there is rolled back
automatically and never reaches the other sites; a good version is promoted everywhere.

Sites are played by HTTP clients with their own tokens, reporting status the way an edge
agent does; the cloud is the real app served by uvicorn on 127.0.0.1. Its clock is virtual:
a test moves it past a canary's bake time rather than waiting for the time to pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tierwise.cloud.auth import issue_token
from tierwise.package.archive import pack_archive
from tierwise.rules.clock import VirtualClock

from .packages import Signer, build
from .support import Cloud, bearer

FEATURE = "quality"
CANARY = "c1"
OTHERS = ("a", "b")
THRESHOLDS = {"max_error_rate": 0.05, "min_accuracy": 0.9, "max_p99_ms": 50.0}
BAKE_SECONDS = 60.0
DAY = 86_400.0


@dataclass
class Fleet:
    """The operator and three sites, each an HTTP client on the live service."""

    admin: httpx.Client
    sites: dict[str, httpx.Client]
    clock: VirtualClock  # the cloud's
    since: dict[str, float] = field(default_factory=dict)
    seen: dict[str, set[int]] = field(default_factory=dict)  # versions each site was offered

    def version_at(self, site: str) -> int:
        deployment = self.sites[site].get(f"/v1/sites/{site}/deployment").json()
        version = int(deployment["features"][FEATURE]["version"])
        self.seen.setdefault(site, set()).add(version)
        return version

    def versions(self) -> dict[str, int]:
        return {site: self.version_at(site) for site in self.sites}

    def report(self, site: str, version: int, healthy: bool = True, **counters: Any) -> None:
        """What an agent sends: cumulative counters for the version it runs."""
        since = self.since.setdefault(f"{site}/{version}", self.clock.now())
        feature = {
            "feature": FEATURE,
            "package": "wine",
            "version": version,
            "healthy": healthy,
            "detail": "" if healthy else "health probe: model failed to load",
            "since": since,
            "counters": counters,
        }
        response = self.sites[site].post(f"/v1/sites/{site}/status", json={"features": [feature]})
        assert response.status_code == 200, response.text

    def start(self, **request: Any) -> dict[str, Any]:
        body = {
            "package": "wine",
            "version": 2,
            "canary_sites": [CANARY],
            "thresholds": THRESHOLDS,
            "min_canary_requests": 100,
            "min_canary_feedback": 50,
            "bake_seconds": BAKE_SECONDS,
        } | request
        response = self.admin.post("/v1/rollouts", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def rollout(self, rollout_id: int) -> dict[str, Any]:
        return dict(self.admin.get(f"/v1/rollouts/{rollout_id}").json())


def upload(client: httpx.Client, package: Path) -> None:
    response = client.post(
        "/v1/packages", content=pack_archive(package), headers={"Content-Type": "application/gzip"}
    )
    assert response.status_code == 201, response.text


@pytest.fixture
def fleet(cloud: Cloud, live: str, signer: Signer, tmp_path: Path) -> Iterator[Fleet]:
    tokens = {"a": cloud.site_a, "b": cloud.site_b, CANARY: bearer(issue_token(cloud.db, CANARY))}
    admin = httpx.Client(base_url=live, headers=cloud.admin, timeout=10)
    sites = {s: httpx.Client(base_url=live, headers=h, timeout=10) for s, h in tokens.items()}
    for version in (1, 2):
        upload(admin, build(tmp_path / f"wine-{version}", signer, "wine", version))
    for site in sites:
        assignment = {"package": "wine", "version": 1, "placement": "edge", "deadline_ms": 100}
        response = admin.put(f"/v1/sites/{site}/features/{FEATURE}", json=assignment)
        assert response.status_code == 200, response.text
    yield Fleet(admin, sites, cloud.clock)
    for client in (admin, *sites.values()):
        client.close()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `check` holds within `timeout` real seconds, for work the ticker does on its own.

    The virtual clock stands still meanwhile: this waits for the ticker's thread, not for time.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


GOOD = {
    "requests": 400,
    "errors": 2,
    "p50_ms": 4.0,
    "p99_ms": 20.0,
    "feedback_correct": 96,
    "feedback_total": 100,
}


@pytest.mark.parametrize(
    ("regression", "reason"),
    [
        ({"feedback_correct": 70}, "accuracy 70.00%"),
        ({"errors": 60}, "error rate 15.00%"),
        ({"p99_ms": 180.0}, "p99 180.0 ms"),
    ],
)
def test_regressing_canary_is_rolled_back_and_never_reaches_other_sites(
    fleet: Fleet, regression: dict[str, float], reason: str
) -> None:
    rollout = fleet.start()
    assert rollout["state"] == "canary"
    assert rollout["other_sites"] == list(OTHERS)
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 2}
    # The canary warms up: too little evidence yet, so nothing is decided.
    fleet.report(CANARY, 2, requests=40, errors=0, p99_ms=10.0)
    assert fleet.rollout(rollout["id"])["state"] == "canary"
    fleet.report(CANARY, 2, **(GOOD | regression))
    final = fleet.rollout(rollout["id"])  # within the bake time: a regression does not wait
    assert final["state"] == "rolled_back"
    assert reason in final["reason"]
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    # However long one waits, the other sites are never offered version 2.
    fleet.clock.advance(DAY)
    assert fleet.rollout(rollout["id"])["state"] == "rolled_back"
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    assert fleet.seen["a"] == fleet.seen["b"] == {1}


def test_canary_failing_its_health_probe_is_rolled_back_at_once(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=3600)
    fleet.report(CANARY, 2, healthy=False)
    final = fleet.rollout(rollout["id"])
    assert final["state"] == "rolled_back"
    assert "model failed to load" in final["reason"]
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}


def test_healthy_canary_is_promoted_then_done_when_every_site_runs_it(fleet: Fleet) -> None:
    rollout = fleet.start()
    fleet.report(CANARY, 2, **GOOD)
    fleet.clock.advance(BAKE_SECONDS - 1)
    baking = fleet.rollout(rollout["id"])
    assert baking["state"] == "canary"
    assert "baking 59/60 s" in baking["reason"]
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 2}
    fleet.clock.advance(1)
    promoting = fleet.rollout(rollout["id"])  # the bake time is over
    assert promoting["state"] == "promoting", promoting["reason"]
    assert fleet.versions() == {"a": 2, "b": 2, CANARY: 2}
    fleet.report("a", 2)
    assert fleet.rollout(rollout["id"])["state"] == "promoting"
    assert "waiting for b" in fleet.rollout(rollout["id"])["reason"]
    fleet.report("b", 2)
    done = fleet.rollout(rollout["id"])
    assert done["state"] == "done"


def test_ticker_ends_the_bake_time_when_nobody_reports_or_asks(fleet: Fleet) -> None:
    fleet.start()
    fleet.report(CANARY, 2, **GOOD)
    fleet.clock.advance(BAKE_SECONDS)  # no report, no read of the rollout after this
    promoted = {"a": 2, "b": 2, CANARY: 2}
    assert eventually(lambda: fleet.versions() == promoted), fleet.versions()


def test_canary_waits_for_labelled_feedback_before_promoting(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=0)
    fleet.report(CANARY, 2, **(GOOD | {"feedback_correct": 10, "feedback_total": 10}))
    waiting = fleet.rollout(rollout["id"])
    assert waiting["state"] == "canary"
    assert "labelled feedback 10/50" in waiting["reason"]
    assert fleet.versions()["a"] == 1


def test_site_failing_after_promotion_rolls_everything_back(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=0)
    fleet.report(CANARY, 2, **GOOD)
    assert fleet.rollout(rollout["id"])["state"] == "promoting"
    fleet.report("b", 2, healthy=False)
    final = fleet.rollout(rollout["id"])
    assert final["state"] == "rolled_back"
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}


def test_reports_from_before_the_rollout_do_not_count(fleet: Fleet) -> None:
    # A site that claims v2 counters before v2 was ever deployed is not evidence for it.
    fleet.report(CANARY, 2, **GOOD)
    fleet.clock.advance(1)
    rollout = fleet.start(bake_seconds=0)
    assert fleet.rollout(rollout["id"])["state"] == "canary"


def test_operator_rollback_restores_every_site(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=0)
    fleet.report(CANARY, 2, **GOOD)
    assert fleet.versions() == {"a": 2, "b": 2, CANARY: 2}
    stopped = fleet.admin.post(f"/v1/rollouts/{rollout['id']}/rollback").json()
    assert stopped["state"] == "rolled_back"
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    again = fleet.admin.post(f"/v1/rollouts/{rollout['id']}/rollback")
    assert again.status_code == 409


def test_rollback_keeps_an_operators_later_change(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=3600)
    pinned = {"package": "wine", "version": 1, "placement": "cloud", "deadline_ms": 100}
    fleet.admin.put(f"/v1/sites/{CANARY}/features/{FEATURE}", json=pinned)
    fleet.admin.post(f"/v1/rollouts/{rollout['id']}/rollback")
    deployment = fleet.sites[CANARY].get(f"/v1/sites/{CANARY}/deployment").json()
    assert deployment["features"][FEATURE]["placement"] == "cloud"


BAD_REQUESTS = [
    ({"version": 3}, "not in the registry"),
    ({"canary_sites": ["nowhere"]}, "runs no feature"),
    ({"version": 1}, "roll out a newer version"),
    ({"canary_sites": []}, ""),
    ({"thresholds": {"max_error_rate": 2}}, ""),
    ({"bake_seconds": -1}, ""),
]


def test_bad_rollout_requests_are_422_and_change_nothing(fleet: Fleet) -> None:
    for changes, message in BAD_REQUESTS:
        body = {"package": "wine", "version": 2, "canary_sites": [CANARY]} | changes
        response = fleet.admin.post("/v1/rollouts", json=body)
        assert response.status_code == 422, changes
        assert message in str(response.json()["detail"])
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    assert fleet.admin.get("/v1/rollouts").json() == []


def test_one_rollout_per_package_at_a_time(fleet: Fleet) -> None:
    fleet.start(bake_seconds=3600)
    second = fleet.admin.post(
        "/v1/rollouts", json={"package": "wine", "version": 2, "canary_sites": ["a"]}
    )
    assert second.status_code == 409
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 2}


def test_unknown_rollout_is_404(fleet: Fleet) -> None:
    assert fleet.admin.get("/v1/rollouts/999").status_code == 404
    assert fleet.admin.get("/v1/rollouts").json() == []
