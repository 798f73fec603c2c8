"""The cascade curve on a case small enough to check by hand, and its bound on local errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from tierwise.package.calibrate import ESCALATE_ALL, cascade_curve, local_error_bound, point_at


def test_escalating_the_least_confident_first() -> None:
    confidence = np.array([0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 0.99, 1.0, 1.0])
    edge_ok = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    cloud_ok = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 1], dtype=bool)
    curve = cascade_curve(confidence, edge_ok, cloud_ok, targets=(0.0, 0.1, 0.2, 0.5, 1.0))
    got = [(p.threshold, p.escalated, p.accuracy) for p in curve]
    assert got == [
        (0.0, 0.0, 0.8),  # nothing escalated: the edge's 8/10
        (0.4, 0.1, 0.9),  # 0.2 escalated: one of the edge's errors fixed
        (0.6, 0.2, 1.0),  # both errors fixed
        (0.95, 0.5, 0.9),  # 0.8 escalated too, and the cloud gets it wrong
        (ESCALATE_ALL, 1.0, 0.9),  # everything: the cloud's 9/10
    ]


def test_ties_escalate_exactly_the_target_through_their_tie_share() -> None:
    confidence = np.array([0.5, 0.5, 0.5, 0.5, 0.9])
    ok = np.ones(5, dtype=bool)
    curve = cascade_curve(confidence, ok, ok, targets=(0.0, 0.2, 0.4, 0.8, 1.0))
    assert [p.escalated for p in curve] == pytest.approx([0.0, 0.2, 0.4, 0.8, 1.0])
    assert [p.tie_share for p in curve] == pytest.approx([0.0, 0.25, 0.5, 0.0, 0.0])


def test_point_at_matches_the_router_rule() -> None:
    point = point_at(0.5, np.array([0.49, 0.5, 0.51]), np.ones(3, bool), np.zeros(3, bool))
    assert point.escalated == pytest.approx(1 / 3)  # strictly below the threshold escalates
    assert point.accuracy == pytest.approx(2 / 3)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="no evaluation samples"):
        cascade_curve(np.array([]), np.array([], bool), np.array([], bool))


def test_tied_scores_spend_the_budget_through_a_tie_share() -> None:
    # eight leaves of a shallow tree, 100 rows each: a 5% budget falls inside the lowest leaf
    confidence = np.repeat(np.linspace(0.55, 0.95, 8), 100)
    ok = np.ones(800, bool)
    point = next(p for p in cascade_curve(confidence, ok, ok) if p.escalated > 0)
    assert point.threshold == pytest.approx(0.55)
    assert point.tie_share == pytest.approx(8 / 100)  # 1% of 800 rows = 8 of the 100 tied
    assert point.escalated == pytest.approx(0.01)


@pytest.mark.parametrize("kept", [1, 10, 59, 597])
def test_no_wrong_answer_kept_bounds_the_error_at_one_minus_alpha_to_the_one_over_n(
    kept: int,
) -> None:
    # P(0 wrong of n | rate b) = (1 - b)^n = 0.05 at the bound
    assert local_error_bound(0, kept) == pytest.approx(1 - 0.05 ** (1 / kept), abs=1e-6)


@pytest.mark.parametrize(("wrong", "kept"), [(1, 10), (3, 100), (17, 359), (50, 60), (9, 10)])
def test_the_bound_is_the_clopper_pearson_beta_quantile(wrong: int, kept: int) -> None:
    expected = beta.ppf(0.95, wrong + 1, kept - wrong)
    assert local_error_bound(wrong, kept) == pytest.approx(expected, abs=1e-6)
    assert local_error_bound(wrong, kept) > wrong / kept
    assert local_error_bound(wrong, kept, confidence=0.99) > local_error_bound(wrong, kept)


def test_nothing_kept_or_nothing_right_bounds_nothing() -> None:
    assert local_error_bound(0, 0) == 1.0
    assert local_error_bound(5, 5) == 1.0


def test_more_evidence_at_the_same_rate_tightens_the_bound() -> None:
    bounds = [local_error_bound(k, 10 * k) for k in (1, 10, 100)]
    assert bounds == sorted(bounds, reverse=True)
    assert bounds[-1] < 0.12  # 100 of 1,000: close to the 10% seen


def test_the_bound_covers_the_true_error_rate_at_least_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    rate, kept = 0.08, 120
    wrong = rng.binomial(kept, rate, size=1000)
    covered = np.mean([local_error_bound(int(k), kept) >= rate for k in wrong])
    assert covered >= 0.95


def test_each_curve_point_bounds_the_errors_it_keeps_local() -> None:
    confidence = np.array([0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 0.99, 1.0, 1.0])
    edge_ok = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    cloud_ok = np.ones(10, dtype=bool)
    curve = cascade_curve(confidence, edge_ok, cloud_ok, targets=(0.0, 0.1, 0.2, 1.0))
    bounds = [(p.escalated, p.local_error_bound) for p in curve]
    assert bounds == [
        (0.0, pytest.approx(beta.ppf(0.95, 3, 8), abs=1e-6)),  # 2 wrong of 10 kept
        (0.1, pytest.approx(beta.ppf(0.95, 2, 8), abs=1e-6)),  # 1 wrong of 9
        (0.2, pytest.approx(1 - 0.05 ** (1 / 8), abs=1e-6)),  # 0 wrong of 8
        (1.0, 1.0),  # nothing kept local
    ]
