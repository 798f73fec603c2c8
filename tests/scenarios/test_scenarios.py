"""Scenarios: names, one fixed split, and a cloud model that beats the edge model honestly."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.errors import UsageError
from tierwise.scenarios import SCENARIOS, get_scenario, scenario_names
from tierwise.scenarios.base import TrainedModels


def test_names_and_example_aliases() -> None:
    assert scenario_names() == ["breast-cancer", "digits", "transactions", "vibration"]
    for name, cls in SCENARIOS.items():
        assert get_scenario(name) is get_scenario(cls.example)
    assert {n for n, c in SCENARIOS.items() if c.synthetic} == {"transactions", "vibration"}
    with pytest.raises(
        UsageError, match=r'unknown scenario "mnist"; known: breast-cancer \(wearable\)'
    ):
        get_scenario("mnist")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_split_is_60_20_20_stratified_and_fixed(name: str) -> None:
    s = get_scenario(name).splits
    n = len(s.y_train) + len(s.y_eval) + len(s.y_test)
    assert len(s.y_train) == pytest.approx(0.6 * n, abs=2)
    assert len(s.y_eval) == pytest.approx(0.2 * n, abs=2)
    classes = np.unique(s.y_train)
    for part in (s.y_eval, s.y_test):
        assert set(np.unique(part)) == set(classes)
    data = get_scenario(name).eval_data(router_data=False)  # router data: test_routers.py
    assert data.source == f"scenario:{name}"
    assert data.x_calibration is not None
    np.testing.assert_array_equal(data.x, s.x_eval)


@pytest.fixture(scope="module")
def trained() -> dict[str, TrainedModels]:
    return {name: get_scenario(name).train() for name in sorted(SCENARIOS)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_cloud_model_is_more_accurate_than_the_edge_model(
    trained: dict[str, TrainedModels], name: str
) -> None:
    s = get_scenario(name).splits
    x = np.concatenate([s.x_eval, s.x_test])
    y = np.concatenate([s.y_eval, s.y_test])
    models = trained[name]
    edge = float(np.mean(models.edge.predict(x) == y))
    cloud = float(np.mean(models.cloud.predict(x) == y))
    assert cloud > edge
    assert edge > 0.85  # small, not useless
