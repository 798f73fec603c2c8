"""Margin: the top class probability minus the runner-up's."""

from __future__ import annotations

import numpy as np

from tierwise.rules.routers import Margin, MaxProbability


def test_known_margins() -> None:
    rows = np.array(
        [
            [1.0, 0.0, 0.0, 0.0],  # one-hot
            [0.25, 0.25, 0.25, 0.25],  # uniform: no margin at all
            [0.2, 0.5, 0.3, 0.0],  # 0.5 - 0.3, wherever the columns are
            [0.4, 0.0, 0.4, 0.2],  # a tie at the top
        ]
    )
    np.testing.assert_allclose(Margin().score(rows, None), [1.0, 0.0, 0.2, 0.0], atol=1e-12)
    assert Margin.name == "margin"


def test_a_row_torn_between_two_classes_scores_below_one_spread_thin() -> None:
    """Same top probability; what differs is where the rest went (why the rule exists)."""
    torn = [0.48, 0.47, 0.05, 0.0, 0.0]
    spread = [0.48, 0.13, 0.13, 0.13, 0.13]
    margin = Margin().score(np.array([torn, spread]), None)
    top = MaxProbability().score(np.array([torn, spread]), None)
    assert top[0] == top[1]
    assert margin[0] < margin[1]
    np.testing.assert_allclose(margin, [0.01, 0.35], atol=1e-12)


def test_one_score_per_row_in_float64_from_float32_rows() -> None:
    rows = np.random.default_rng(0).dirichlet(np.ones(10), size=50)
    score = Margin().score(rows.astype(np.float32), None)
    assert score.shape == (50,)
    assert score.dtype == np.float64
    ordered = np.sort(rows, axis=1)
    np.testing.assert_allclose(score, ordered[:, -1] - ordered[:, -2], atol=1e-7)
    assert np.all((score >= 0) & (score <= 1))


def test_two_classes_margin_is_twice_the_top_less_one() -> None:
    top = np.linspace(0.5, 1.0, 11)
    rows = np.stack([top, 1 - top], axis=1)
    np.testing.assert_allclose(Margin().score(rows, None), 2 * top - 1, atol=1e-12)
