"""`tierwise up` deploys a cascade with the package's own rule and the threshold for its share."""

from __future__ import annotations

import pytest

from tierwise.errors import TierwiseError
from tierwise.scenarios.build import ScenarioPackages
from tierwise.spec.tiers import EscalationRule, Placement
from tierwise.up.deploy import cascade_threshold
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
