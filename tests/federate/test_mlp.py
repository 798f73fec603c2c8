from __future__ import annotations

import numpy as np
import pytest

from tierwise.federate import mlp

SHAPE = mlp.MlpShape(features=6, hidden=5, classes=3)


def _data(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.random((n, SHAPE.features), dtype=np.float32)
    return x, (x[:, 0] * 3).astype(np.int64).clip(0, 2)


def test_one_sgd_step_follows_the_numerical_gradient() -> None:
    x, y = _data()
    params = mlp.init_params(SHAPE, seed=3)
    lr = 1e-3
    new, _ = mlp.train(params, x, y, epochs=1, learning_rate=lr, batch_size=len(y))
    analytic = [(p - n) / lr for p, n in zip(params, new, strict=True)]
    eps = 1e-3
    for layer in range(4):
        flat = params[layer].ravel()
        for i in (0, flat.size - 1):
            plus = [p.astype(np.float64).copy() for p in params]
            minus = [p.astype(np.float64).copy() for p in params]
            plus[layer].ravel()[i] += eps
            minus[layer].ravel()[i] -= eps
            numeric = (mlp.evaluate(plus, x, y).loss - mlp.evaluate(minus, x, y).loss) / (2 * eps)
            assert analytic[layer].ravel()[i] == pytest.approx(numeric, rel=0.05, abs=1e-4)


def test_the_proximal_term_keeps_local_weights_near_the_global_model() -> None:
    x, y = _data()
    start = mlp.init_params(SHAPE, seed=0)
    free, _ = mlp.train(start, x, y, epochs=20, learning_rate=0.5, batch_size=8)
    held, _ = mlp.train(start, x, y, epochs=20, learning_rate=0.5, batch_size=8, proximal_mu=1.0)
    drift = [float(np.linalg.norm(mlp.flatten(p) - mlp.flatten(start))) for p in (free, held)]
    assert drift[1] < 0.5 * drift[0]


def test_flatten_and_unflatten_round_trip() -> None:
    params = mlp.init_params(SHAPE, seed=2)
    vector = mlp.flatten(params)
    assert vector.size == sum(mlp.segment_sizes(SHAPE))
    back = mlp.unflatten(vector, SHAPE)
    assert all(np.array_equal(a, b) for a, b in zip(params, back, strict=True))
    with pytest.raises(ValueError, match="expected"):
        mlp.unflatten(vector[:-1], SHAPE)


def test_training_learns_digits() -> None:
    from tierwise.federate.sitedata import load_dataset

    data = load_dataset("digits")
    params = mlp.init_params(mlp.MlpShape(64, 32, 10), seed=0)
    before = mlp.evaluate(params, data.x, data.y).accuracy
    params, _ = mlp.train(params, data.x, data.y, epochs=5, learning_rate=0.1, batch_size=32)
    assert before < 0.2 < 0.9 < mlp.evaluate(params, data.x, data.y).accuracy


def test_losses_that_leave_the_site_are_not_float32_values_like_its_inputs() -> None:
    """Metrics cross the WAN as 64-bit floats, and the wire search (tests/wire_search.py)
    looks for every raw input widened to 64 bits. A loss computed in float32 and widened is
    such a value; one in a few hundred equals one of ~100,000 inputs by chance, and the
    learning loop's test failed that way. A float64 loss has 29 more bits to differ by."""
    x, y = _data(200)
    params = mlp.init_params(SHAPE, seed=4)
    evaluated = mlp.evaluate(params, x, y).loss
    _, trained = mlp.train(params, x, y, epochs=1, learning_rate=0.1, batch_size=len(y))
    for loss in (evaluated, trained):  # one batch: the mean training loss is its own
        assert float(np.float32(loss)) != loss
