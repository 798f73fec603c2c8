"""Max-probability: the score is the top class probability, row by row."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.rules.routers import MaxProbability

ROWS = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],  # one-hot: as sure as can be
        [0.25, 0.25, 0.25, 0.25],  # uniform: the least sure four classes allow
        [0.5, 0.3, 0.2, 0.0],
        [0.1, 0.2, 0.3, 0.4],  # the top class need not come first
    ]
)


def test_the_score_is_the_top_probability() -> None:
    score = MaxProbability().score(ROWS, None)
    np.testing.assert_allclose(score, [1.0, 0.25, 0.5, 0.4])
    assert MaxProbability.name == "max_probability"


def test_one_score_per_row_in_float64_from_float32_rows() -> None:
    rng = np.random.default_rng(0)
    rows = rng.dirichlet(np.ones(10), size=50)
    score = MaxProbability().score(rows.astype(np.float32), None)
    assert score.shape == (50,)
    assert score.dtype == np.float64
    np.testing.assert_allclose(score, rows.max(axis=1), atol=1e-7)


def test_surer_rows_score_higher() -> None:
    rows = np.array([[0.9, 0.1], [0.6, 0.4], [0.75, 0.25]])
    assert list(np.argsort(MaxProbability().score(rows, None))) == [1, 2, 0]


def test_no_rows_give_no_scores() -> None:
    assert MaxProbability().score(np.zeros((0, 3)), None).shape == (0,)


@pytest.mark.parametrize("classes", [2, 10])
def test_scores_stay_in_the_unit_interval(classes: int) -> None:
    rows = np.random.default_rng(1).dirichlet(np.full(classes, 0.3), size=200)
    score = MaxProbability().score(rows, None)
    assert np.all((score >= 1 / classes - 1e-12) & (score <= 1.0))
