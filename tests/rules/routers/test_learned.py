"""Learned: any model from class probabilities to P(edge answer is right) becomes a rule."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.rules.routers import Entropy, Learned, Margin, MaxProbability, router_features


def test_router_features_of_a_known_row() -> None:
    row = np.array([[0.2, 0.5, 0.3, 0.0]])
    features = router_features(row)
    assert features.shape == (1, 4 + 2 * 4)
    assert features.dtype == np.float32
    top, second, margin, entropy = features[0, :4]
    assert (top, second) == pytest.approx((0.5, 0.3))
    assert margin == pytest.approx(0.2)
    assert 1 - entropy == pytest.approx(Entropy().score(row, None)[0], abs=1e-6)
    np.testing.assert_allclose(features[0, 4:8], row[0], atol=1e-7)
    # logs of the probabilities, with log 0 clipped to a finite value
    np.testing.assert_allclose(features[0, 8:11], np.log(row[0, :3]), atol=1e-6)
    assert np.isfinite(features).all()
    assert features[0, 11] == pytest.approx(np.log(1e-9), rel=1e-6)


def test_router_features_are_one_contiguous_row_per_input_row() -> None:
    rows = np.random.default_rng(0).dirichlet(np.ones(10), size=7).astype(np.float32)
    features = router_features(rows)
    assert features.shape == (7, 24)
    assert features.flags.c_contiguous
    np.testing.assert_allclose(features[:, 0], MaxProbability().score(rows, None), atol=1e-7)
    np.testing.assert_allclose(features[:, 2], Margin().score(rows, None), atol=1e-6)


def test_the_models_probability_is_the_score() -> None:
    """A 'model' answering the top probability is max-probability."""
    seen: list[np.ndarray] = []

    def top_probability(probabilities: np.ndarray) -> np.ndarray:
        seen.append(probabilities)
        return probabilities.max(axis=1).astype(np.float64)

    rows = np.random.default_rng(1).dirichlet(np.ones(5), size=30)
    score = Learned(top_probability).score(rows, None)
    assert score.shape == (30,)
    assert score.dtype == np.float64
    np.testing.assert_allclose(score, rows.max(axis=1), atol=1e-7)
    assert seen[0].dtype == np.float32  # what an ONNX session takes
    assert Learned.name == "learned"


def test_a_column_of_answers_is_flattened_and_kept_in_the_unit_interval() -> None:
    def overshooting(probabilities: np.ndarray) -> np.ndarray:
        return (probabilities[:, :1] * 4 - 1.5).astype(np.float64)  # [N, 1], outside [0, 1] too

    rows = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    np.testing.assert_allclose(Learned(overshooting).score(rows, None), [1.0, 0.5, 0.9], atol=1e-6)
