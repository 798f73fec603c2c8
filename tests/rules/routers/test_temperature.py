"""Temperature: top probability after softmax(log p / T), and fitting T on held-out data."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.rules.routers import MaxProbability, Temperature, fit_temperature

ROWS = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _labelled(sharpen: float, rows: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z) (the truth), and a model answering softmax(sharpen * z):
    over-confident for sharpen > 1, under-confident below. T = sharpen calibrates it again."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, size=(rows, 10))
    truth = _softmax(z)
    labels = (rng.random((rows, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    return _softmax(sharpen * z), labels


def test_temperature_one_is_max_probability() -> None:
    np.testing.assert_allclose(
        Temperature(1.0).score(ROWS, None), MaxProbability().score(ROWS, None)
    )
    assert Temperature.name == "temperature"


def test_a_higher_temperature_softens_and_a_lower_one_sharpens() -> None:
    soft, plain, sharp = (Temperature(t).score(ROWS, None) for t in (2.0, 1.0, 0.5))
    unsure = slice(0, 2)  # rows neither one-hot nor uniform
    assert np.all(soft[unsure] < plain[unsure])
    assert np.all(sharp[unsure] > plain[unsure])
    # the extremes stay put: one-hot is 1, uniform is 1/3, at any temperature (up to the clip
    # keeping log 0 finite: 1e-12 ** (1/2) per empty class)
    np.testing.assert_allclose(soft[2:], [1.0, 1 / 3], atol=1e-5)
    np.testing.assert_allclose(sharp[2:], [1.0, 1 / 3], atol=1e-9)


def test_a_known_row_at_temperature_two() -> None:
    # softmax(log p / 2) is sqrt(p) renormalized
    root = np.sqrt([0.7, 0.2, 0.1])
    score = Temperature(2.0).score(ROWS[:1], None)
    assert score[0] == pytest.approx(root[0] / root.sum(), abs=1e-12)


def test_two_classes_rank_as_max_probability_does() -> None:
    top = np.random.default_rng(2).uniform(0.5, 1.0, 100)
    rows = np.stack([top, 1 - top], axis=1)
    order = np.argsort(MaxProbability().score(rows, None), kind="stable")
    for t in (0.3, 2.5):
        np.testing.assert_array_equal(
            np.argsort(Temperature(t).score(rows, None), kind="stable"), order
        )


def test_with_more_classes_it_can_reorder_rows_of_equal_top_probability() -> None:
    """Scaling depends on the whole row: the same top probability, scored apart (so its
    curve is not max-probability's, as package curves show)."""
    rows = np.array([[0.5, 0.5, 0.0], [0.5, 0.25, 0.25]])
    sharp = Temperature(0.5).score(rows, None)
    assert sharp[0] == pytest.approx(0.5)
    assert sharp[1] == pytest.approx(0.25 / (0.25 + 2 * 0.0625))


def test_one_score_per_row_in_float64_from_float32_rows() -> None:
    rows = np.random.default_rng(0).dirichlet(np.ones(10), size=50)
    score = Temperature(1.7).score(rows.astype(np.float32), None)
    assert score.shape == (50,)
    assert score.dtype == np.float64
    np.testing.assert_allclose(score, Temperature(1.7).score(rows, None), atol=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_a_temperature_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="temperature must be positive"):
        Temperature(bad)


@pytest.mark.parametrize("sharpen", [3.0, 0.5, 1.0])
def test_fit_temperature_recovers_how_far_the_model_was_sharpened(sharpen: float) -> None:
    probabilities, labels = _labelled(sharpen)
    fitted = fit_temperature(probabilities, labels)
    assert fitted == pytest.approx(sharpen, rel=0.05)


def test_the_fitted_temperature_calibrates_the_score() -> None:
    """What the rule promises: among rows scoring about s, about s of the answers are right."""
    probabilities, labels = _labelled(3.0, seed=1)
    score = Temperature(fit_temperature(probabilities, labels)).score(probabilities, None)
    right = probabilities.argmax(axis=1) == labels
    for lo, hi in ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.7)):
        band = (score >= lo) & (score < hi)
        assert band.sum() > 500
        assert right[band].mean() == pytest.approx(score[band].mean(), abs=0.03)
    raw = probabilities.max(axis=1)
    assert right.mean() < raw.mean() - 0.1  # before: over-confident by more than 10 points
