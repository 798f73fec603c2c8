"""What runs where for each example, and the rates a scale gives every feature at every site."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise.errors import UsageError
from tierwise.plan.planner import plan
from tierwise.spec import load_spec, parse_spec
from tierwise.up.layout import layout, package_name
from tierwise.up.scale import (
    MIN_RATE,
    UTILIZATION,
    choose_scale,
    parse_min_rate,
    parse_scale,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _runs(name: str, strategy: str = "plan"):  # type: ignore[no-untyped-def]
    spec = load_spec(EXAMPLES / f"{name}.yaml")
    result = plan(spec)
    key = "tierwise" if strategy == "plan" else "cloud-only"
    return spec, layout(spec, result.strategies[key], strategy)  # type: ignore[arg-type]


def test_factory_runs_the_plan_with_the_vibration_models() -> None:
    _, runs = _runs("factory")
    by_name = {r.name: r for r in runs}
    assert by_name["safety-stop"].mode == "edge"
    assert by_name["safety-stop"].local_role == "edge"
    cascade = by_name["predictive-maintenance"]
    assert cascade.mode == "cascade"
    assert (cascade.local_role, cascade.cloud_role) == ("edge", "cloud")
    assert cascade.escalated == pytest.approx(0.10)
    line = by_name["line-optimization"]
    assert (line.mode, line.local_role, line.cloud_role) == ("cloud", "edge", "cloud")
    assert {r.scenario for r in runs} == {"vibration"}
    assert package_name("vibration", "cloud") == "vibration-cloud"
    assert sum(s.rate for s in by_name["safety-stop"].sites) == pytest.approx(100 * 125)


def test_cloud_only_sends_every_feature_straight_to_the_cloud() -> None:
    _, runs = _runs("camera", "cloud-only")
    assert {r.mode for r in runs} == {"direct"}
    assert all(r.local_role is None and r.cloud_role is not None for r in runs)


def test_a_model_without_a_scenario_is_a_usage_error(minimal: dict) -> None:  # type: ignore[type-arg]
    import yaml

    spec = parse_spec(yaml.safe_dump(minimal))
    result = plan(spec)
    with pytest.raises(UsageError, match=r"models\[0\] m: tierwise up needs .*`scenario: NAME`"):
        layout(spec, result.strategies["tierwise"], "plan")


def test_an_unknown_scenario_is_a_usage_error(minimal: dict) -> None:  # type: ignore[type-arg]
    import yaml

    minimal["models"][0]["scenario"] = "hologram"
    spec = parse_spec(yaml.safe_dump(minimal))
    with pytest.raises(UsageError, match=r'models\[0\]\.scenario: unknown scenario "hologram"'):
        layout(spec, plan(spec).strategies["tierwise"], "plan")


def test_auto_scale_offers_a_share_of_the_measured_capacity_with_floors_for_rare_features() -> None:
    _, runs = _runs("factory")
    scale = choose_scale(runs, duration=60.0, fixed=None, capacity=400.0)
    assert scale.offered == pytest.approx(400.0 * UTILIZATION, rel=0.02)
    assert set(scale.boosted) == {"predictive-maintenance", "line-optimization"}
    assert all(r >= MIN_RATE for rates in scale.rates.values() for r in rates.values())
    north, south = (
        scale.rates["safety-stop"]["plant-north"],
        scale.rates["safety-stop"]["plant-south"],
    )
    assert south / north == pytest.approx(60 / 40)  # sites keep their proportions
    assert "auto" in scale.explain()
    assert "400/s" in scale.explain()


def test_fixed_scale_multiplies_the_spec_rates() -> None:
    _, runs = _runs("camera")
    scale = choose_scale(runs, duration=60.0, fixed=0.01, capacity=None)
    assert scale.rates["near-miss"]["warehouse-berlin"] == pytest.approx(5 * 40 * 0.01)


@pytest.mark.parametrize("text", ["0", "1.5", "lots", "-0.1"])
def test_bad_scale_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="--scale"):
        parse_scale(text)


def test_min_rate_zero_keeps_the_spec_proportions_exactly() -> None:
    _, runs = _runs("factory")
    scale = choose_scale(runs, duration=60.0, fixed=0.004, capacity=None, min_rate=0.0)
    assert scale.boosted == []
    weekly = scale.rates["line-optimization"]["plant-north"]
    every_10ms = scale.rates["safety-stop"]["plant-north"]
    assert every_10ms / weekly == pytest.approx(40 * 100 * 7 * 24 * 3600)  # 40 sensors at 100/s
    assert "proportions kept exactly" in scale.explain()


def test_min_rate_sets_the_floor() -> None:
    _, runs = _runs("factory")
    scale = choose_scale(runs, duration=60.0, fixed=0.004, capacity=None, min_rate=0.25)
    assert scale.rates["line-optimization"]["plant-east"] == 0.25
    assert "floor of 0.25/s" in scale.explain()


@pytest.mark.parametrize("text", ["-1", "fast", "inf"])
def test_bad_min_rate_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="--min-rate"):
        parse_min_rate(text)


def test_min_rate_accepts_a_per_second_suffix() -> None:
    assert parse_min_rate("0.5/s") == 0.5
    assert parse_min_rate(None) is None
