"""The public surface is exactly what __all__ says, and it plans a spec end to end."""

from __future__ import annotations

import json

from tests.conftest import ROOT
from tests.exported import assert_exports_match, heavy_modules_loaded

import tierwise
import tierwise.plan.planner
from tierwise.plan import enumerate_candidates


def test_all_lists_exactly_the_public_names() -> None:
    assert_exports_match("tierwise")


def test_plan_end_to_end_through_the_public_api() -> None:
    path = ROOT / "examples" / "factory.yaml"  # an edge, a cascade and a cloud placement
    spec = tierwise.load_spec(path)
    result = tierwise.make_plan(spec)
    assert isinstance(result, tierwise.PlanResult)
    assert tierwise.make_plan is tierwise.plan.planner.plan

    # every feature is placed, meets its deadline, and is explained against each alternative
    outcomes = result.plan.features
    assert [o.feature for o in outcomes] == [f.name for f in spec.features]
    assert {o.placement for o in outcomes} == {"edge", "cascade", "cloud"}
    assert all(o.latency <= o.deadline and o.meets_deadline for o in outcomes)
    assert [c.label for c in result.choice] == [o.label for o in outcomes]
    assert result.plan.cost == sum(result.plan.cost_breakdown.values())
    for decision, options in zip(result.decisions, enumerate_candidates(spec), strict=True):
        assert decision.reason
        assert len(decision.alternatives) == len(options) - 1
    assert set(result.strategies) == {"tierwise", "cloud-only", "edge-only"}

    # the same plan as the planner module's own call on a spec parsed from the text
    direct = tierwise.plan.planner.plan(tierwise.parse_spec(path.read_text(), str(path)))
    assert [(o.label, o.cost, o.latency) for o in direct.plan.features] == [
        (o.label, o.cost, o.latency) for o in outcomes
    ]
    assert direct.plan.cost == result.plan.cost

    # the JSON (`tierwise plan --json`) is strict JSON and carries the same placements
    data = result.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert [(f["feature"], f["placement"], f["cost"]) for f in data["features"]] == [
        (o.feature, o.placement, o.cost) for o in outcomes
    ]
    assert data["strategies"]["tierwise"]["cost"] == result.plan.cost
    assert {k: v for k, v in data.items() if k != "seconds"} == {
        k: v for k, v in direct.to_dict().items() if k != "seconds"
    }


def test_importing_tierwise_does_not_load_the_solver() -> None:
    assert heavy_modules_loaded("tierwise", ("scipy",)) == []
