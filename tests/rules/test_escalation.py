"""The cascade rule: the same answers for one request (the agent) and for arrays (the simulator)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tierwise.rules.escalation import (
    RoundTripTracker,
    cascade_answer,
    escalate,
    is_hard,
    tie_draws,
)


def test_escalate_needs_hard_wan_up_and_time_for_the_round_trip() -> None:
    assert escalate(True, remaining=0.5, round_trip=0.2, wan_up=True) is True
    assert escalate(True, remaining=0.1, round_trip=0.2, wan_up=True) is False
    assert escalate(True, remaining=0.5, round_trip=0.2, wan_up=False) is False
    assert escalate(False, remaining=0.5, round_trip=0.2, wan_up=True) is False


def test_scalar_and_array_answers_agree() -> None:
    rng = np.random.default_rng(0)
    hard = rng.random(200) < 0.3
    remaining = rng.uniform(0, 1, 200)
    up = rng.random(200) < 0.9
    many = escalate(hard, remaining, 0.4, up)
    one_by_one = [
        escalate(bool(h), float(r), 0.4, bool(u))
        for h, r, u in zip(hard, remaining, up, strict=True)
    ]
    assert isinstance(many, np.ndarray)
    assert many.tolist() == one_by_one


def test_is_hard_below_threshold() -> None:
    assert is_hard(0.2, 0.3) is True
    assert is_hard(0.3, 0.3) is False
    assert is_hard(np.array([0.1, 0.5]), 0.3).tolist() == [True, False]


def test_late_cloud_answer_falls_back_to_local_at_the_deadline() -> None:
    latency, from_cloud = cascade_answer(0.05, 3.0, 2.0, True)
    assert (latency, from_cloud) == (2.0, False)
    latency, from_cloud = cascade_answer(0.05, 0.4, 2.0, True)
    assert (latency, from_cloud) == (0.4, True)
    latency, from_cloud = cascade_answer(0.05, math.inf, 2.0, False)
    assert (latency, from_cloud) == (0.05, False)


def test_tracker_uses_prior_then_a_high_quantile_of_what_it_saw() -> None:
    tracker = RoundTripTracker(prior=0.3, window=100, quantile=0.9, min_samples=10)
    assert tracker.estimate() == 0.3
    tracker.observe(np.linspace(0.01, 0.1, 100))
    assert tracker.estimate() == pytest.approx(np.quantile(np.linspace(0.01, 0.1, 100), 0.9))
    for _ in range(100):  # the WAN degrades: one value at a time, as the agent observes
        tracker.observe(1.0)
    assert tracker.estimate() == pytest.approx(1.0)
    assert tracker.seen == 200


def test_tracker_ring_wraps_in_order() -> None:
    tracker = RoundTripTracker(prior=0.0, window=4, quantile=0.5, min_samples=1)
    tracker.observe(np.array([1.0, 2.0, 3.0]))
    tracker.observe(np.array([10.0, 20.0]))  # wraps: ring holds 20, 2, 3, 10
    assert sorted(tracker._ring.tolist()) == [2.0, 3.0, 10.0, 20.0]
    tracker.observe(np.array([5.0, 5.0, 5.0, 5.0, 5.0]))
    assert tracker.estimate() == 5.0
    tracker.observe(np.array([np.nan, np.inf]))  # a lost answer is not a round trip
    assert tracker.estimate() == 5.0


def test_tracker_rejects_a_bad_quantile() -> None:
    with pytest.raises(ValueError, match="quantile"):
        RoundTripTracker(prior=0.1, quantile=1.0)


def test_ties_at_the_threshold_escalate_the_share_of_their_draws_below_tie_share() -> None:
    confidence = np.full(1000, 0.75)  # a shallow tree: every row in one leaf
    draws = np.linspace(0, 1, 1000, endpoint=False)
    hard = is_hard(confidence, 0.75, 0.3, draws)
    assert hard.mean() == pytest.approx(0.3, abs=0.001)
    assert not is_hard(confidence, 0.75).any()  # without a tie share, ties stay local
    assert is_hard(confidence, 0.76, 0.3, draws).all()  # below the threshold: always hard


def test_tie_draws_are_fixed_by_the_row_and_spread_evenly() -> None:
    rows = np.random.default_rng(3).random((4000, 8)).astype(np.float32)
    draws = tie_draws(rows)
    assert np.array_equal(draws, tie_draws(rows.copy()))  # same bytes, same draw
    assert draws.min() >= 0
    assert draws.max() < 1
    assert np.histogram(draws, bins=4, range=(0, 1))[0] == pytest.approx([1000] * 4, rel=0.1)
