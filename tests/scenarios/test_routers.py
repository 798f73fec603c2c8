"""A threshold from an escalation budget, for every rule of the digits package, as the edge runs it.

The package's curve for a rule says which threshold escalates at most the budget on the
evaluation rows; the edge scores requests with the package runtime's rule (the learned one
from its signed router file). On the evaluation rows that must reproduce the curve point
exactly; on the test rows, which chose nothing, the share escalated must land near the budget.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tierwise.package.runtime import PackageModel, load_verified
from tierwise.rules.escalation import is_hard
from tierwise.rules.routers import RULE_NAMES
from tierwise.scenarios import get_scenario
from tierwise.scenarios.build import ScenarioPackages

BUDGET = 0.05
# How far a share chosen on one split may land on another of the same size by chance alone
# (the standard deviations of the difference of two binomial shares). With ~360 rows each,
# one standard deviation is 1.6 points at a 5% share: a tighter band would test the split.
SAMPLING_SDS = 3.0


def _model(packages: ScenarioPackages, variant: str) -> PackageModel:
    return load_verified(packages.edge, [packages.public_key], variant)


@pytest.mark.parametrize("rule", RULE_NAMES)
@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_the_budget_threshold_reproduces_its_curve_point_on_the_evaluation_rows(
    digits_packages: ScenarioPackages, variant: str, rule: str
) -> None:
    cascade = digits_packages.edge_manifest.cascade
    assert cascade is not None
    point = cascade.at_budget(variant, BUDGET, rule)
    assert BUDGET - 0.01 <= point.escalated <= BUDGET
    splits = get_scenario("digits").splits
    model = _model(digits_packages, variant)
    edge = model.predict(splits.x_eval)
    score = model.escalation_rule(rule).score(edge.probabilities)
    hard = np.asarray(is_hard(score, point.threshold), dtype=bool)
    assert hard.mean() == point.escalated
    cloud = load_verified(digits_packages.cloud, [digits_packages.public_key])
    cloud_right = cloud.predict(splits.x_eval).labels == splits.y_eval
    joint = np.where(hard, cloud_right, edge.labels == splits.y_eval)
    assert joint.mean() == pytest.approx(point.accuracy)


@pytest.mark.parametrize("rule", RULE_NAMES)
@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_the_budget_threshold_escalates_about_the_budget_on_the_test_rows(
    digits_packages: ScenarioPackages, variant: str, rule: str
) -> None:
    cascade = digits_packages.edge_manifest.cascade
    assert cascade is not None
    point = cascade.at_budget(variant, BUDGET, rule)
    test = get_scenario("digits").test_data()
    model = _model(digits_packages, variant)
    score = model.escalation_rule(rule).score(model.predict(test.x).probabilities)
    escalated = float(np.mean(is_hard(score, point.threshold)))
    n_eval = digits_packages.edge_manifest.build.eval_samples
    band = SAMPLING_SDS * math.sqrt(BUDGET * (1 - BUDGET) * (1 / n_eval + 1 / len(test.x)))
    assert abs(escalated - BUDGET) <= band, f"{escalated:.2%} escalated, band ±{band:.2%}"


def test_the_package_ships_every_rule_with_the_learned_one_as_a_signed_file(
    digits_packages: ScenarioPackages,
) -> None:
    manifest = digits_packages.edge_manifest
    cascade = manifest.cascade
    assert cascade is not None
    for variant in ("fp32", "int8"):
        assert set(cascade.rules[variant]) == set(RULE_NAMES)
        learned = cascade.rules[variant]["learned"]
        assert learned.file == f"router-{variant}.onnx"
        assert learned.file in manifest.files
        assert cascade.rules[variant]["temperature"].temperature is not None
        assert cascade.best_rule[variant] in RULE_NAMES
