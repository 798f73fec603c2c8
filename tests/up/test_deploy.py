"""`tierwise up` deploys the plan's variant, and a cascade with that variant's own rule and the
threshold for its share."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml
from tests.small_specs import MINIMAL, varied

from tierwise.errors import TierwiseError
from tierwise.plan.planner import plan
from tierwise.scenarios.build import ScenarioPackages
from tierwise.spec import parse_spec
from tierwise.spec.tiers import EscalationRule, Placement
from tierwise.up.deploy import cascade_threshold, deployed_variant, feature_assignment
from tierwise.up.layout import FeatureRun, layout
from tierwise.wire import FeatureAssignment


@pytest.mark.parametrize("share", [0.05, 0.10, 0.30])
def test_the_edge_variants_best_rule_travels_with_its_threshold(
    digits_packages: ScenarioPackages, share: float
) -> None:
    manifest = digits_packages.edge_manifest
    cascade = manifest.cascade
    assert cascade is not None
    variant = manifest.variant().name  # what the agent runs: the smallest
    assert variant == "int8"
    best = cascade.best_rule[variant]
    rule, chosen = cascade_threshold(manifest, share)
    assert rule is EscalationRule(best)
    point = cascade.at_budget(variant, share, best)
    assert chosen == point
    assert point.escalated <= share + 1e-12
    assignment = FeatureAssignment(
        package="digits",
        version=1,
        placement=Placement.CASCADE,
        threshold=chosen.threshold,
        rule=rule,
        tie_share=chosen.tie_share,
        deadline_ms=100.0,
    )
    again = FeatureAssignment.model_validate_json(assignment.model_dump_json())
    assert (again.rule, again.threshold, again.tie_share) == (
        rule,
        chosen.threshold,
        chosen.tie_share,
    )


@pytest.mark.parametrize("rule", list(EscalationRule))
def test_a_rule_the_spec_names_is_deployed_on_its_own_curve(
    digits_packages: ScenarioPackages, rule: EscalationRule
) -> None:
    manifest = digits_packages.edge_manifest
    assert manifest.cascade is not None
    deployed, point = cascade_threshold(manifest, 0.05, rule)
    assert deployed is rule
    assert point == manifest.cascade.at_budget("int8", 0.05, rule.value)


def test_a_package_without_a_cascade_has_no_threshold(digits_packages: ScenarioPackages) -> None:
    with pytest.raises(TierwiseError, match="digits-cloud has no cascade calibration curve"):
        cascade_threshold(digits_packages.cloud_manifest, 0.10)


def _plan_runs(spec_data: dict[str, Any]) -> dict[str, FeatureRun]:
    spec = parse_spec(yaml.safe_dump(spec_data))
    outcome = plan(spec).strategies["tierwise"]
    return {r.name: r for r in layout(spec, outcome, "plan")}


def test_up_deploys_the_variant_the_plan_chose(digits_packages: ScenarioPackages) -> None:
    """The plan picks a spec variant per feature; up deploys the package variant it stands
    for (its own name, or the `#name` its `package:` picks), else the package's smallest."""
    manifest = digits_packages.edge_manifest
    assert manifest.variant().name == "int8"  # what runs when no variant is named
    measured = f"{digits_packages.edge / 'manifest.json'}#fp32"
    data = varied(
        MINIMAL,
        models__0__scenario="digits",
        models__0__variants=[
            {"name": "fp32", "flops": "10MFLOP", "size": "4MB", "accuracy": "95%"},
            {"name": "int8", "flops": "3MFLOP", "size": "1MB", "accuracy": "94%"},
            {"name": "small", "flops": "3MFLOP", "size": "1MB", "accuracy": "94%"},
            {"name": "measured", "package": measured, "flops": "10MFLOP"},
        ],
    )
    feature = data["features"][0] | {"offline": True}  # answered locally: device or edge
    data["features"] = [
        feature | {"name": name, "variants": [variant]}
        for name, variant in (("a", "fp32"), ("b", "int8"), ("c", "small"), ("d", "measured"))
    ]
    runs = _plan_runs(data)
    assert {r.outcome.variant for r in runs.values()} == {"fp32", "int8", "small", "measured"}
    chosen = {name: deployed_variant(run, manifest) for name, run in runs.items()}
    assert chosen == {"a": "fp32", "b": "int8", "c": "int8", "d": "fp32"}
    for name, run in runs.items():
        assignment = feature_assignment(run, manifest)
        assert (assignment.package, assignment.version) == ("digits", 1)
        assert assignment.variant == chosen[name]
        assert assignment.placement is Placement(run.mode)

    # a cascade on fp32 escalates by fp32's own curve, not by the smallest variant's
    cascade = replace(runs["a"], mode="cascade", escalated=0.10)
    assignment = feature_assignment(cascade, manifest)
    assert manifest.cascade is not None
    best = manifest.cascade.best_rule["fp32"]
    point = manifest.cascade.at_budget("fp32", 0.10, best)
    assert (assignment.variant, assignment.rule) == ("fp32", EscalationRule(best))
    assert (assignment.threshold, assignment.tie_share) == (point.threshold, point.tie_share)
    assert assignment.planned_escalated == 0.10


def test_a_cloud_placed_feature_falls_back_on_the_smallest_variant(
    digits_packages: ScenarioPackages,
) -> None:
    data = varied(
        MINIMAL,
        models__0__scenario="digits",
        features__0__variants=["full"],
        features__0__deadline="1s",
    )
    data["tiers"]["device"]["memory"] = "1KB"  # nothing fits locally, so the cloud answers
    data["tiers"]["edge"]["memory"] = "1KB"
    runs = _plan_runs(data)
    assert runs["f"].mode == "cloud"
    assert runs["f"].variant is None  # its local model only stands in while the cloud is away
    assert feature_assignment(runs["f"], digits_packages.edge_manifest).variant == "int8"
