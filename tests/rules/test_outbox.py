"""The outbox rule: bytes are sent, kept or dropped, never lost track of."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.rules.outbox import DropPolicy, admit, outbox_step


@pytest.mark.parametrize("policy", list(DropPolicy))
def test_every_byte_is_sent_kept_or_dropped(policy: DropPolicy) -> None:
    rng = np.random.default_rng(1)
    depth = 0.0
    sent = dropped = offered = 0.0
    for _ in range(2000):
        incoming = float(rng.exponential(100.0))
        capacity = 0.0 if rng.random() < 0.3 else float(rng.exponential(120.0))
        step = outbox_step(depth, incoming, capacity, 500.0, policy)
        assert 0.0 <= step.depth <= 500.0
        depth = step.depth
        sent += step.sent
        dropped += step.dropped
        offered += incoming
    assert offered == pytest.approx(sent + dropped + depth)
    assert dropped > 0  # the cap was reached: the test exercises drops


def test_outage_fills_then_drops_then_drains() -> None:
    depth = 0.0
    for _ in range(5):  # WAN down: nothing goes
        step = outbox_step(depth, 100.0, 0.0, 300.0, DropPolicy.DROP_OLDEST)
        depth = step.depth
    assert depth == 300.0
    step = outbox_step(depth, 0.0, 1000.0, 300.0, DropPolicy.DROP_OLDEST)
    assert (step.sent, step.depth) == (300.0, 0.0)


def test_policies_drop_the_same_bytes_but_accept_different_ones() -> None:
    old = outbox_step(250.0, 100.0, 0.0, 300.0, DropPolicy.DROP_OLDEST)
    new = outbox_step(250.0, 100.0, 0.0, 300.0, DropPolicy.DROP_NEWEST)
    assert old.dropped == new.dropped == 50.0
    assert old.accepted == 100.0  # the arrivals get in; 50 old bytes go
    assert new.accepted == 50.0  # half the arrivals are refused


def test_array_steps_match_scalar_steps() -> None:
    depth = np.array([0.0, 200.0, 290.0])
    many = outbox_step(depth, np.array([50.0, 50.0, 50.0]), 20.0, 300.0, DropPolicy.DROP_NEWEST)
    for i in range(3):
        one = outbox_step(float(depth[i]), 50.0, 20.0, 300.0, DropPolicy.DROP_NEWEST)
        assert one.depth == many.depth[i]
        assert one.dropped == many.dropped[i]


def test_admit_per_item() -> None:
    assert admit(90.0, 20.0, 100.0, DropPolicy.DROP_NEWEST) == (False, 0.0)
    assert admit(90.0, 20.0, 100.0, DropPolicy.DROP_OLDEST) == (True, 10.0)
    assert admit(0.0, 200.0, 100.0, DropPolicy.DROP_OLDEST) == (False, 0.0)  # never fits
    assert admit(10.0, 20.0, 100.0, DropPolicy.DROP_OLDEST) == (True, 0.0)
