"""Staged rollout over real HTTP: the canary goes first; a regression there is rolled back
automatically and never reaches the other sites; a good version is promoted everywhere.

Sites are played by HTTP clients with their own tokens, reporting status the way an edge
agent does, and the operator by `CloudAdmin`; the cloud is the real app served by uvicorn on
127.0.0.1. Its clock is virtual: a test moves it past a canary's bake time rather than
waiting for the time to pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.package.support import Keys

from tierwise.cloud.auth import issue_token
from tierwise.cloud.client import CloudAdmin
from tierwise.errors import VerificationError
from tierwise.rules.clock import VirtualClock
from tierwise.spec.tiers import Placement
from tierwise.wire import FeatureAssignment, Rollout, RolloutRequest

from .packages import build
from .support import ADMIN_TOKEN, Cloud, bearer

FEATURE = "quality"
CANARY = "c1"
OTHERS = ("a", "b")
THRESHOLDS = {"max_error_rate": 0.05, "min_accuracy": 0.9, "max_p99_ms": 50.0}
BAKE_SECONDS = 60.0
DAY = 86_400.0


@dataclass
class Fleet:
    """The operator and three sites (each an HTTP client) on the live service."""

    admin: CloudAdmin
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

    def start(self, **request: Any) -> Rollout:
        """Roll wine v2 out, CANARY first, with the tests' thresholds unless told otherwise."""
        body = {
            "package": "wine",
            "version": 2,
            "canary_sites": [CANARY],
            "thresholds": THRESHOLDS,
            "min_canary_requests": 100,
            "min_canary_feedback": 50,
            "bake_seconds": BAKE_SECONDS,
        } | request
        return self.admin.start_rollout(RolloutRequest.model_validate(body))


def wine(version: int, placement: Placement = Placement.EDGE) -> FeatureAssignment:
    """Run this version of the wine package for FEATURE, placed as given."""
    return FeatureAssignment(package="wine", version=version, placement=placement, deadline_ms=100)


@pytest.fixture
def fleet(cloud: Cloud, live: str, signer: Keys, tmp_path: Path) -> Iterator[Fleet]:
    tokens = {
        "a": cloud.site_a,
        "b": cloud.site_b,
        CANARY: bearer(issue_token(cloud.db, CANARY, cloud.clock.now())),
    }
    admin = CloudAdmin(live, ADMIN_TOKEN, timeout_s=10)
    sites = {s: httpx.Client(base_url=live, headers=h, timeout=10) for s, h in tokens.items()}
    for version in (1, 2):
        admin.upload_package(build(tmp_path / f"wine-{version}", signer, "wine", version))
    for site in sites:
        admin.assign(site, FEATURE, wine(1))
    yield Fleet(admin, sites, cloud.clock)
    for client in sites.values():
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
    assert rollout.state == "canary"
    assert rollout.other_sites == list(OTHERS)
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 2}
    # The canary warms up: too little evidence yet, so nothing is decided.
    fleet.report(CANARY, 2, requests=40, errors=0, p99_ms=10.0)
    assert fleet.admin.rollout(rollout.id).state == "canary"
    fleet.report(CANARY, 2, **(GOOD | regression))
    final = fleet.admin.rollout(rollout.id)  # within the bake time: a regression does not wait
    assert final.state == "rolled_back"
    assert reason in final.reason
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    # However long one waits, the other sites are never offered version 2.
    fleet.clock.advance(DAY)
    assert fleet.admin.rollout(rollout.id).state == "rolled_back"
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    assert fleet.seen["a"] == fleet.seen["b"] == {1}


def test_canary_failing_its_health_probe_is_rolled_back_at_once(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=3600)
    fleet.report(CANARY, 2, healthy=False)
    final = fleet.admin.rollout(rollout.id)
    assert final.state == "rolled_back"
    assert "model failed to load" in final.reason
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}


def test_healthy_canary_is_promoted_then_done_when_every_site_runs_it(fleet: Fleet) -> None:
    rollout = fleet.start()
    fleet.report(CANARY, 2, **GOOD)
    fleet.clock.advance(BAKE_SECONDS - 1)
    baking = fleet.admin.rollout(rollout.id)
    assert baking.state == "canary"
    assert "baking 59/60 s" in baking.reason
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 2}
    fleet.clock.advance(1)
    promoting = fleet.admin.rollout(rollout.id)  # the bake time is over
    assert promoting.state == "promoting", promoting.reason
    assert fleet.versions() == {"a": 2, "b": 2, CANARY: 2}
    fleet.report("a", 2)
    assert fleet.admin.rollout(rollout.id).state == "promoting"
    assert "waiting for b" in fleet.admin.rollout(rollout.id).reason
    fleet.report("b", 2)
    done = fleet.admin.rollout(rollout.id)
    assert done.state == "done"


def test_ticker_ends_the_bake_time_when_nobody_reports_or_asks(fleet: Fleet) -> None:
    fleet.start()
    fleet.report(CANARY, 2, **GOOD)
    fleet.clock.advance(BAKE_SECONDS)  # no report, no read of the rollout after this
    promoted = {"a": 2, "b": 2, CANARY: 2}
    assert eventually(lambda: fleet.versions() == promoted), fleet.versions()


def test_canary_waits_for_labelled_feedback_before_promoting(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=0)
    fleet.report(CANARY, 2, **(GOOD | {"feedback_correct": 10, "feedback_total": 10}))
    waiting = fleet.admin.rollout(rollout.id)
    assert waiting.state == "canary"
    assert "labelled feedback 10/50" in waiting.reason
    assert fleet.versions()["a"] == 1


def test_site_failing_after_promotion_rolls_everything_back(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=0)
    fleet.report(CANARY, 2, **GOOD)
    assert fleet.admin.rollout(rollout.id).state == "promoting"
    fleet.report("b", 2, healthy=False)
    final = fleet.admin.rollout(rollout.id)
    assert final.state == "rolled_back"
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}


def test_reports_from_before_the_rollout_do_not_count(fleet: Fleet) -> None:
    # A site that claims v2 counters before v2 was ever deployed is not evidence for it.
    fleet.report(CANARY, 2, **GOOD)
    fleet.clock.advance(1)
    rollout = fleet.start(bake_seconds=0)
    assert fleet.admin.rollout(rollout.id).state == "canary"


def test_operator_rollback_restores_every_site(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=0)
    fleet.report(CANARY, 2, **GOOD)
    assert fleet.versions() == {"a": 2, "b": 2, CANARY: 2}
    stopped = fleet.admin.roll_back(rollout.id)
    assert stopped.state == "rolled_back"
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    with pytest.raises(VerificationError, match=r"\(409\)"):
        fleet.admin.roll_back(rollout.id)


def test_rollback_keeps_an_operators_later_change(fleet: Fleet) -> None:
    rollout = fleet.start(bake_seconds=3600)
    fleet.admin.assign(CANARY, FEATURE, wine(1, Placement.CLOUD))
    fleet.admin.roll_back(rollout.id)
    deployment = fleet.sites[CANARY].get(f"/v1/sites/{CANARY}/deployment").json()
    assert deployment["features"][FEATURE]["placement"] == "cloud"


UNUSABLE_REQUESTS = [
    ({"version": 3}, "not in the registry"),
    ({"canary_sites": ["nowhere"]}, "runs no feature"),
    ({"version": 1}, "roll out a newer version"),
]
MALFORMED_REQUESTS = [
    {"canary_sites": []},
    {"thresholds": {"max_error_rate": 2}},
    {"bake_seconds": -1},
]


def test_bad_rollout_requests_are_422_and_change_nothing(fleet: Fleet) -> None:
    for changes, message in UNUSABLE_REQUESTS:
        with pytest.raises(VerificationError, match=rf"\(422\): .*{message}"):
            fleet.start(**changes)
    for changes in MALFORMED_REQUESTS:
        # RolloutRequest refuses to build these, so CloudAdmin cannot send them: sent raw.
        body = {"package": "wine", "version": 2, "canary_sites": [CANARY]} | changes
        url = f"{fleet.admin.url}/v1/rollouts"
        response = httpx.post(url, json=body, headers=bearer(ADMIN_TOKEN))
        assert response.status_code == 422, changes
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    assert fleet.admin.rollouts() == []


def test_a_rollout_dropping_an_assigned_variant_is_422(
    fleet: Fleet, signer: Keys, tmp_path: Path
) -> None:
    fleet.admin.upload_package(build(tmp_path / "wine-3", signer, "wine", 3, variant="int8"))
    named = FeatureAssignment(
        package="wine", version=1, variant="fp32", placement=Placement.EDGE, deadline_ms=100
    )
    fleet.admin.assign("b", FEATURE, named)
    with pytest.raises(VerificationError, match=r"\(422\): .*no variant 'fp32'.*sites b run"):
        fleet.start(version=3)
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 1}
    fleet.start(version=2)  # v2 has fp32 too
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 2}


def test_one_rollout_per_package_at_a_time(fleet: Fleet) -> None:
    fleet.start(bake_seconds=3600)
    with pytest.raises(VerificationError, match=r"\(409\)"):
        fleet.start(canary_sites=["a"])
    assert fleet.versions() == {"a": 1, "b": 1, CANARY: 2}


def test_unknown_rollout_is_404(fleet: Fleet) -> None:
    with pytest.raises(VerificationError, match=r"\(404\)"):
        fleet.admin.rollout(999)
    assert fleet.admin.rollouts() == []


def test_rollout_for_some_sites_and_one_feature_leaves_the_rest_alone(fleet: Fleet) -> None:
    """A model retrained for drifted sites (tierwise.learn) goes to those sites alone, and
    only for the feature it was retrained for."""
    fleet.admin.assign("a", "other", wine(1))
    fleet.admin.assign(CANARY, "other", wine(1))
    rollout = fleet.start(sites=[CANARY, "a"], features=[FEATURE])
    assert rollout.other_sites == ["a"]
    fleet.report(CANARY, 2, **GOOD)
    fleet.clock.advance(BAKE_SECONDS)
    assert fleet.admin.rollout(rollout.id).state == "promoting"
    assert fleet.versions() == {"a": 2, "b": 1, CANARY: 2}
    for site in ("a", CANARY):  # the other feature of the same package stays on v1
        deployment = fleet.sites[site].get(f"/v1/sites/{site}/deployment").json()
        assert deployment["features"]["other"]["version"] == 1


def test_rollout_refuses_a_canary_outside_its_sites(fleet: Fleet) -> None:
    with pytest.raises(VerificationError, match="not among the rollout's sites"):
        fleet.start(sites=["a"])
