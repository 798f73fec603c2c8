"""The edge model's predictions for one loop turn's requests, shared per model and rule: each
request gets what it would alone (to float32 rounding), and its errors stay its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from tests.package.support import make_keys

from tierwise.edge.local_batch import MAX_BATCH_ROWS, LocalBatcher, predict_together
from tierwise.edge.packages import PackageAnswerer
from tierwise.errors import UsageError
from tierwise.package.runtime import load_verified
from tierwise.spec.tiers import EscalationRule

from .support import build_package, digits

RULE = EscalationRule.MAX_PROBABILITY


class CountingAnswerer(PackageAnswerer):
    """A real loaded package that counts its `predict` calls (and may say its rows depend on
    each other, as a dynamically quantized INT8 variant does)."""

    calls = 0
    independent = True

    @property
    def row_independent(self) -> bool:
        return self.independent

    def predict(self, inputs, rule=RULE):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().predict(inputs, rule)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("local-batch")
    keys = make_keys(root / "keys")
    return build_package(root / "edge", keys.private, "digits-edge", 1, max_iter=30), keys.public


def _model(package: tuple[Path, Path]) -> CountingAnswerer:
    directory, public = package
    return CountingAnswerer(load_verified(directory, [public]))


def test_requests_of_one_turn_share_a_call_and_get_what_they_would_alone(
    package: tuple[Path, Path],
) -> None:
    model = _model(package)
    x, _ = digits()
    requests = [x[0:1], x[1:4], x[4:5], x[5:12]]
    alone = [model.predict(rows, RULE) for rows in requests]
    model.calls = 0

    async def together() -> list[tuple[np.ndarray, np.ndarray]]:
        batcher = LocalBatcher()
        return list(await asyncio.gather(*(batcher.predict(model, r, RULE) for r in requests)))

    shared = asyncio.run(together())
    assert model.calls == 1
    for (outputs, confidence), (want_outputs, want_confidence) in zip(shared, alone, strict=True):
        # float32 kernels sum in another order for a batch than for one row: ulps apart
        np.testing.assert_allclose(outputs, want_outputs, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(confidence, want_confidence, rtol=1e-5, atol=1e-7)


def test_a_request_the_model_refuses_fails_alone(package: tuple[Path, Path]) -> None:
    model = _model(package)
    x, _ = digits()
    narrow = x[0:1, :10]  # not the model's width: never shared
    poisoned = x[1:2].copy()
    poisoned[0, 3] = np.nan  # the right width: shared, the shared call fails, each alone
    outcomes = predict_together(
        [
            _call(model, x[2:3]),
            _call(model, narrow),
            _call(model, poisoned),
            _call(model, x[3:5]),
        ]
    )
    assert isinstance(outcomes[1], UsageError)
    assert "shape" in str(outcomes[1])
    assert isinstance(outcomes[2], UsageError)
    assert "NaN" in str(outcomes[2])
    for i, rows in ((0, x[2:3]), (3, x[3:5])):
        outcome = outcomes[i]
        assert not isinstance(outcome, BaseException)
        np.testing.assert_allclose(outcome[0], model.predict(rows, RULE)[0], rtol=1e-5, atol=1e-7)


def test_a_model_whose_rows_depend_on_each_other_is_called_per_request(
    package: tuple[Path, Path],
) -> None:
    model = _model(package)
    model.independent = False
    x, _ = digits()
    predict_together([_call(model, x[i : i + 1]) for i in range(4)])
    assert model.calls == 4


def test_a_shared_call_holds_at_most_max_batch_rows(package: tuple[Path, Path]) -> None:
    model = _model(package)
    x, _ = digits()
    rows = x[: MAX_BATCH_ROWS // 2 + 1]  # two of these do not fit one call
    outcomes = predict_together([_call(model, rows) for _ in range(3)])
    assert model.calls == 3
    assert all(not isinstance(o, BaseException) and len(o[0]) == len(rows) for o in outcomes)


def _call(model: CountingAnswerer, rows: np.ndarray):  # type: ignore[no-untyped-def]
    from tierwise.edge.local_batch import _Call

    return _Call(model, RULE, rows)
