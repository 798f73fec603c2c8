"""Prototypes: the top probability times how much the input's neighbourhood agrees with it."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.rules.routers import MaxProbability, Prototypes, PrototypeSet, prototype_scores
from tierwise.rules.routers.prototypes import class_distances

# Two classes on a line, two prototypes each (class 1's second repeats its first, as the
# build pads a short class): class 0 near 0 and 2, class 1 near 10.
LINE = PrototypeSet(
    centres=np.array([[[0.0], [2.0]], [[10.0], [10.0]]], dtype=np.float32),
    mean=np.zeros(1, dtype=np.float32),
    scale=np.ones(1, dtype=np.float32),
    tau=4.0,
)


def test_distances_are_to_the_nearest_prototype_of_each_class() -> None:
    d = class_distances(LINE, np.array([[1.0], [9.0], [2.0]]))
    np.testing.assert_allclose(d, [[1.0, 81.0], [49.0, 1.0], [0.0, 64.0]], atol=1e-9)


def test_inputs_are_standardized_before_measuring() -> None:
    scaled = PrototypeSet(LINE.centres, np.array([5.0], np.float32), np.array([2.0], np.float32), 4)
    # x = 7 is z = (7 - 5) / 2 = 1: as far from 0 and 2 as x = 1 is unscaled
    np.testing.assert_allclose(
        class_distances(scaled, np.array([[7.0]])), class_distances(LINE, np.array([[1.0]]))
    )


def test_a_known_row() -> None:
    # x = 1: d = (1, 81), q = softmax(-(0, 80) / 4) = (1 / (1 + e^-20), e^-20 / (1 + e^-20))
    p = np.array([[0.3, 0.7], [0.8, 0.2]])
    score = prototype_scores(LINE, p, np.array([[1.0], [1.0]]))
    far = np.exp(-20.0)
    np.testing.assert_allclose(score, [0.7 * far / (1 + far), 0.8 / (1 + far)], rtol=1e-9)


def test_a_sure_answer_in_another_class_region_scores_low() -> None:
    """What max-probability cannot see: two equally sure answers, one where the training
    rows of its class are, one among another class's rows."""
    p = np.array([[0.95, 0.05], [0.95, 0.05]])
    x = np.array([[1.0], [9.5]])
    score = Prototypes.reference(LINE).score(p, x)
    assert score[0] == pytest.approx(0.95, abs=1e-6)
    assert score[1] < 0.01
    np.testing.assert_array_equal(MaxProbability().score(p, x), [0.95, 0.95])


def test_midway_the_score_is_half_the_top_probability() -> None:
    score = prototype_scores(LINE, np.array([[0.4, 0.6]]), np.array([[6.0]]))  # 16 from 2 and 10
    assert score[0] == pytest.approx(0.3)


def test_the_score_stays_in_the_unit_interval_and_one_per_row() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(2), size=50)
    score = Prototypes.reference(LINE).score(p.astype(np.float32), rng.normal(5, 8, (50, 1)))
    assert score.shape == (50,)
    assert score.dtype == np.float64
    assert ((score >= 0) & (score <= 1)).all()
    assert (score <= p.max(axis=1) + 1e-6).all()  # agreement only ever lowers the top


def test_the_model_gets_float32_rows_and_its_column_is_flattened() -> None:
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def model(p: np.ndarray, x: np.ndarray) -> np.ndarray:
        seen.append((p, x))
        return np.array([[1.5], [-0.5]])  # a column, outside [0, 1]

    score = Prototypes(model).score(np.array([[0.6, 0.4], [0.5, 0.5]]), np.zeros((2, 3)))
    np.testing.assert_array_equal(score, [1.0, 0.0])
    assert [a.dtype for a in seen[0]] == [np.float32, np.float32]
    assert Prototypes.name == "prototypes"


def test_without_inputs_or_with_misaligned_ones_it_refuses() -> None:
    rule = Prototypes.reference(LINE)
    p = np.array([[0.6, 0.4], [0.5, 0.5]])
    with pytest.raises(ValueError, match="scores the input rows; none were given"):
        rule.score(p, None)
    with pytest.raises(ValueError, match="2 rows of probabilities but 3 input rows"):
        rule.score(p, np.zeros((3, 1)))
