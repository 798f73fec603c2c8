"""The circuit breaker opens after repeated failures, probes after a cool-down, backs off."""

from __future__ import annotations

import pytest

from tierwise.edge.cloud_health import CloudHealth
from tierwise.edge.lifecycle import ALLOWED, AgentState, Lifecycle
from tierwise.rules.clock import VirtualClock


def test_opens_after_three_failures_then_lets_one_probe_through() -> None:
    clock = VirtualClock()
    health = CloudHealth(clock, failures_to_open=3, cooldown_s=0.5, max_cooldown_s=2.0)
    for _ in range(2):
        health.failed()
    assert health.allow()
    assert not health.down
    health.failed()
    assert health.down
    assert not health.allow()
    clock.advance(0.5)
    assert health.allow()  # the probe
    assert not health.allow()  # only one at a time
    health.failed()  # the probe failed: a longer cool-down
    clock.advance(0.5)
    assert health.down
    clock.advance(0.5)
    assert health.allow()
    health.succeeded()
    assert not health.down
    assert health.allow()
    assert health.allow()


def test_cool_down_doubles_up_to_its_cap() -> None:
    clock = VirtualClock()
    health = CloudHealth(clock, failures_to_open=1, cooldown_s=1.0, max_cooldown_s=3.0)
    waits = []
    health.failed()
    for _ in range(4):
        start = clock.now()
        while not health.allow():
            clock.advance(0.25)
        waits.append(clock.now() - start)
        health.failed()
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_lifecycle_only_moves_forward() -> None:
    life = Lifecycle()
    assert life.state is AgentState.STARTING
    life.move(AgentState.SERVING)
    assert life.serving
    life.move(AgentState.DRAINING)
    life.move(AgentState.STOPPED)
    assert ALLOWED[AgentState.STOPPED] == frozenset()
    with pytest.raises(RuntimeError, match="cannot go from stopped to serving"):
        life.move(AgentState.SERVING)
