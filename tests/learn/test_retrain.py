"""Retraining on field rows: fine-tuning the deployed model recovers what a gain shift took."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.federate import mlp
from tierwise.learn.retrain import example_rows, split_rows, train_centralized
from tierwise.learn.target import LoopSettings
from tierwise.rules.drift import CONFIDENCE_EDGES


@pytest.fixture(scope="module")
def deployed() -> tuple[mlp.Params, np.ndarray, np.ndarray]:
    """A digits MLP trained on the first 1,000 rows (the model the sites run), and the rest."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = data.data.astype(np.float32) / 16.0, data.target.astype(np.int64)
    params = mlp.init_params(mlp.MlpShape(64, 32, 10), seed=0)
    params, _ = mlp.train(params, x[:1000], y[:1000], epochs=60, learning_rate=0.1, batch_size=32)
    return params, x[1000:], y[1000:]


def test_split_is_seeded_and_keeps_every_row_once() -> None:
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20, dtype=np.int64)
    a = split_rows(x, y, 0.25, seed=3)
    b = split_rows(x, y, 0.25, seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert (len(a[1]), len(a[3])) == (15, 5)
    assert sorted([*a[1].tolist(), *a[3].tolist()]) == list(range(20))


def test_fine_tuning_on_shifted_field_rows_recovers_the_accuracy_the_shift_took(
    deployed: tuple[mlp.Params, np.ndarray, np.ndarray],
) -> None:
    params, x, y = deployed
    unshifted = mlp.evaluate(params, x, y).accuracy
    field = x + 0.8  # a sensor whose zero point drifted
    retrained = train_centralized(params, field, y, LoopSettings(epochs=30))
    assert retrained.before < unshifted - 0.05, "the shift must hurt for the test to mean much"
    assert retrained.after >= unshifted - 0.03
    assert retrained.after > retrained.before
    assert (retrained.train_rows, retrained.held_out_rows) == (598, 199)
    assert sum(retrained.confidence) == 199
    assert len(retrained.confidence) == len(CONFIDENCE_EDGES) + 1


def test_examples_take_the_true_label_else_the_clouds_and_skip_misfits() -> None:
    feedback = [
        {
            "examples": [
                {"inputs": [1.0, 2.0], "label": 1, "cloud_label": 0},
                {"inputs": [3.0, 4.0], "label": None, "cloud_label": 2},
                {"inputs": [5.0], "label": 1, "cloud_label": 1},  # not this model's width
                {"inputs": [6.0, 7.0], "label": None, "cloud_label": None},
            ]
        }
    ]
    x, y = example_rows(feedback, 2)
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert y.tolist() == [1, 2]
