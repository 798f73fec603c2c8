"""Entropy: one minus the normalized entropy of the class probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.rules.routers import Entropy


def test_one_hot_is_one_and_uniform_is_zero() -> None:
    rows = np.array([[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_allclose(Entropy().score(rows, None), [1.0, 0.0], atol=1e-9)
    assert Entropy.name == "entropy"


def test_half_and_half_over_four_classes_is_one_half() -> None:
    # entropy log 2 over the maximum log 4
    score = Entropy().score(np.array([[0.5, 0.0, 0.5, 0.0]]), None)
    assert score[0] == pytest.approx(0.5, abs=1e-9)


def test_a_sharper_distribution_scores_higher() -> None:
    rows = np.array([[0.4, 0.3, 0.3], [0.9, 0.05, 0.05], [0.6, 0.2, 0.2]])
    assert list(np.argsort(Entropy().score(rows, None))) == [0, 2, 1]


def test_the_whole_distribution_counts_not_just_its_top() -> None:
    # same top probability, the rest concentrated on one class vs spread over many
    concentrated = [0.5, 0.5, 0.0, 0.0, 0.0]
    spread = [0.5, 0.125, 0.125, 0.125, 0.125]
    score = Entropy().score(np.array([concentrated, spread]), None)
    assert score[0] > score[1]


def test_one_score_per_row_in_float64_from_float32_rows() -> None:
    rows = np.random.default_rng(0).dirichlet(np.ones(10), size=50)
    score = Entropy().score(rows.astype(np.float32), None)
    assert score.shape == (50,)
    assert score.dtype == np.float64
    expected = 1 + (rows * np.log(rows)).sum(axis=1) / np.log(10)
    np.testing.assert_allclose(score, expected, atol=1e-6)
    assert np.all((score >= 0) & (score <= 1))
