"""The planner on the examples: where things go, and why, in numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tierwise.errors import InfeasibleError
from tierwise.plan.html import render_html
from tierwise.plan.planner import PlanResult, plan
from tierwise.spec import Spec, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def factory() -> PlanResult:
    return plan(load_spec(EXAMPLES / "factory.yaml"))


def _decision(result: PlanResult, feature: str) -> Any:
    return next(d for d in result.decisions if d.outcome.feature == feature)


def test_factory_safety_stop_runs_locally_and_says_why(factory: PlanResult) -> None:
    stop = _decision(factory, "safety-stop")
    assert stop.outcome.placement in {"edge", "device"}
    assert stop.outcome.meets_deadline
    # the binding constraints on the cloud: the deadline and the offline requirement
    assert "cloud: " in stop.reason
    assert "> budget 20.0ms" in stop.reason
    assert "must work offline" in stop.reason


def test_factory_weekly_optimization_runs_in_the_cloud_because_it_is_global(
    factory: PlanResult,
) -> None:
    weekly = _decision(factory, "line-optimization")
    assert weekly.outcome.placement == "cloud"
    assert "needs every site's data (scope: global)" in weekly.reason


def test_factory_cross_plant_training_is_federated_because_data_stays(
    factory: PlanResult,
) -> None:
    [job] = factory.training
    assert job.mode == "federated"
    assert "raw data may reach only the site" in job.reason


def test_every_rejected_alternative_names_what_ruled_it_out(factory: PlanResult) -> None:
    for decision in factory.decisions:
        for alt in decision.alternatives:
            assert alt.ruled_out_by, alt


def test_plan_beats_cloud_only_on_the_factory(factory: PlanResult) -> None:
    plan_, cloud = factory.strategies["tierwise"], factory.strategies["cloud-only"]
    assert plan_.cost < cloud.cost
    assert plan_.upstream_bps < cloud.upstream_bps / 100
    assert plan_.privacy_violations == 0 < cloud.privacy_violations
    assert all(o.meets_deadline for o in plan_.features)


def test_json_has_no_infinities_and_round_trips(factory: PlanResult) -> None:
    text = json.dumps(factory.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert set(data["strategies"]) == {"cloud-only", "edge-only", "tierwise"}
    assert data["features"][0]["reason"]


def test_html_report_has_both_charts(factory: PlanResult) -> None:
    html = render_html(factory)
    assert html.count("<svg") == 2
    assert "safety-stop" in html
    assert "budget" in html


def test_a_feature_nothing_can_run_names_each_candidates_violation(
    minimal: dict[str, Any],
) -> None:
    minimal["features"][0].update(raw_data_may_reach="device", deadline="1ms")
    minimal["tiers"]["device"]["memory"] = "100KB"
    with pytest.raises(InfeasibleError) as info:
        plan(Spec.model_validate(minimal))
    message = str(info.value)
    assert message.startswith("feature f: no placement meets its hard constraints")
    assert "raw data may not leave the device" in message
    assert "needs 1.0MB > 100.0KB device memory" in message


def test_cascade_wins_when_accuracy_needs_the_cloud_model_only_sometimes(
    factory: PlanResult,
) -> None:
    pm = _decision(factory, "predictive-maintenance")
    assert pm.outcome.placement == "cascade"
    assert pm.outcome.accuracy is not None
    assert pm.outcome.accuracy >= 0.95
    assert pm.outcome.latency <= pm.outcome.deadline
