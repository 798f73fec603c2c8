"""Replicas racing on the same rollouts: every stage transition happens exactly once.

Each racer plays one `tierwise cloud` replica: a thread with its own engine (its own
connections, so the database sees separate sessions, as it would from separate processes).
At a barrier all of them try to advance the same rollout at once, half the way a GET does
(`advance`, waiting for the row lock) and half the way the ticker and status reports do
(`advance_active`, skipping a row another replica holds). Across all racers exactly one may
report each transition, and the rollout's own record must name that racer's time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from tierwise.cloud.db import Database, open_database
from tierwise.cloud.deployments import assign_feature
from tierwise.cloud.rollout import advance, advance_active, get_rollout, start_rollout
from tierwise.cloud.status import record_status
from tierwise.errors import ConflictError, UnprocessableError
from tierwise.spec.tiers import Placement
from tierwise.wire import (
    FeatureAssignment,
    Rollout,
    RolloutRequest,
    RolloutState,
    SiteStatus,
)

from .conftest import DbTarget
from .support import EPOCH, register_rows

RACERS = 4
ROLLOUTS = 200
FEATURE = "quality"
CANARY = "c1"
OTHERS = ("o1", "o2")


@pytest.fixture
def replicas(db_target: DbTarget) -> Iterator[list[Database]]:
    """One database handle (engine and pool) per racing replica, all on one database."""
    handles = [open_database(db_target.url, db_target.schema) for _ in range(RACERS)]
    yield handles
    for db in handles:
        db.dispose()


def report(db: Database, site: str, package: str, version: int, now: float) -> None:
    """A healthy site's cumulative counters for `version`, as its agent sends them."""
    feature = {
        "feature": FEATURE,
        "package": package,
        "version": version,
        "healthy": True,
        "detail": "",
        "since": now,
        "counters": {"requests": 10},
    }
    record_status(db, site, SiteStatus.model_validate({"features": [feature]}), now)


def fleet_on_v1(db: Database, package: str) -> None:
    register_rows(db, package, (1, 2))
    for site in (CANARY, *OTHERS):
        assignment = FeatureAssignment(
            package=package, version=1, placement=Placement.EDGE, deadline_ms=100
        )
        assign_feature(db, site, FEATURE, assignment, EPOCH)


class Race:
    """`RACERS` threads that, at each `run`, all call their step at once and report back."""

    def __init__(self, replicas: list[Database]) -> None:
        self.replicas = replicas
        self.barrier = threading.Barrier(len(replicas))

    def run(self, step: Callable[[int, Database], object]) -> list[object]:
        results: list[object] = [None] * len(self.replicas)
        errors: list[BaseException] = []

        def racer(i: int) -> None:
            try:
                self.barrier.wait(timeout=30)
                results[i] = step(i, self.replicas[i])
            except BaseException as exc:  # surfaced below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(len(self.replicas))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        return results


def moved_to(rollout_id: int, now: float) -> Callable[[int, Database], Rollout | None]:
    """Racer i's step: advance the rollout at `now + i` ms; the rollout if racer i moved it."""

    def step(i: int, db: Database) -> Rollout | None:
        at = now + i / 1000
        if i % 2:
            return next((r for r in advance_active(db, at) if r.id == rollout_id), None)
        rollout, moved = advance(db, rollout_id, at)
        return rollout if moved else None

    return step


def test_racing_replicas_advance_each_rollout_stage_exactly_once(replicas: list[Database]) -> None:
    db = replicas[0]
    race = Race(replicas)
    transitions = {RolloutState.PROMOTING: 0, RolloutState.DONE: 0}
    for n in range(ROLLOUTS):
        package = f"p{n}"
        fleet_on_v1(db, package)
        now = EPOCH + n * 100
        request = RolloutRequest(
            package=package,
            version=2,
            canary_sites=[CANARY],
            min_canary_requests=1,
            min_canary_feedback=0,
            bake_seconds=0,
        )
        rollout_id = start_rollout(db, request, now).id
        report(db, CANARY, package, 2, now + 1)
        for target, at in ((RolloutState.PROMOTING, now + 2), (RolloutState.DONE, now + 4)):
            movers = [(i, r) for i, r in enumerate(race.run(moved_to(rollout_id, at))) if r]
            assert len(movers) == 1, f"rollout {n}: {len(movers)} racers moved it to {target}"
            winner, moved = movers[0]
            assert moved.state is target
            transitions[target] += 1
            stored = get_rollout(db, rollout_id)
            assert stored.state is target
            assert stored.updated_at == pytest.approx(at + winner / 1000)  # the winner wrote it
            if target is RolloutState.PROMOTING:
                for site in OTHERS:
                    report(db, site, package, 2, at + 1)
    assert transitions == {RolloutState.PROMOTING: ROLLOUTS, RolloutState.DONE: ROLLOUTS}


def test_racing_replicas_start_one_rollout_of_a_package(replicas: list[Database]) -> None:
    db = replicas[0]
    race = Race(replicas)
    for n in range(ROLLOUTS // 4):
        package = f"s{n}"
        fleet_on_v1(db, package)
        request = RolloutRequest(package=package, version=2, canary_sites=[CANARY])

        def start(_i: int, replica: Database, request: RolloutRequest = request) -> object:
            try:
                return start_rollout(replica, request, EPOCH)
            except (ConflictError, UnprocessableError) as exc:
                return exc  # refused: another replica's rollout came first (in flight or done)

        results = race.run(start)
        started = [r for r in results if isinstance(r, Rollout)]
        assert len(started) == 1, f"package {package}: {len(started)} rollouts started"
        refused = [r for r in results if isinstance(r, ConflictError | UnprocessableError)]
        assert len(refused) == RACERS - 1
