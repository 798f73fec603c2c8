"""Escalation rules side by side: how close each cascade router gets to the oracle, in one run.

For each scenario (real data: digits, breast-cancer; labelled generators: vibration,
transactions) this builds the scenario's signed packages — the edge package carries every
escalation rule's curve, fitted on the evaluation split and on the edge model's out-of-fold
outputs on the training split — and then, on the *test* split (which no model, rule or
threshold saw), scores every test row with each rule exactly as the edge agent does
(`PackageModel.escalation_rule`) and prints:

- needed: the smallest share of rows the rule must escalate (its least sure first) for the
  joint answer to reach the cloud model's accuracy less 0.1 point, and its ratio to the
  oracle rate (the edge's error rate: what a router knowing the wrong answers would send);
- at a 5% budget: the threshold the package's curve gives for escalating at most 5%
  (`CascadeCalibration.at_budget`), applied to the test rows — the share it escalated there,
  the joint accuracy, and the edge's error rate among the answers kept local beside the 95%
  bound the curve promised for it;
- KubeEdge Sedna's default hard-example filter for comparison: CrossEntropyFilter with
  threshold_cross_entropy=0.5 (hard when 1 + sum(p log p) / log C < 0.5), run as is.

Goals (issue 15): on digits the package's best rule within 2x the oracle rate; the best rule
never needs more than max-probability; every rule's 5% threshold escalates 5% +- 1 point of
the test rows. The test splits are small (digits: 360 rows, 7 edge errors), so one row moves
a ratio by ~0.15x; read the ratios with that in mind.

    .venv/bin/python benchmarks/router.py [--scenarios digits,breast-cancer,...] [--cache DIR]

Exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tierwise.package.calibrate import point_at
from tierwise.package.runtime import load_verified
from tierwise.rules.routers import DEFAULT_RULE, make_rule
from tierwise.scenarios import get_scenario
from tierwise.scenarios.build import build_scenario_packages

SCENARIOS = ("digits", "breast-cancer", "vibration", "transactions")
BUDGET = 0.05
BUDGET_SLACK = 0.01
NEAR_CLOUD = 0.001  # reach the cloud's accuracy less 0.1 point
DIGITS_GOAL = 2.0  # best rule within 2x the oracle rate on digits
SEDNA_THRESHOLD = 0.5  # CrossEntropyFilter's default threshold_cross_entropy


def needed_share(
    score: NDArray[np.float64], edge_ok: NDArray[np.bool_], cloud_ok: NDArray[np.bool_]
) -> float:
    """Smallest share escalated (least sure first) whose joint accuracy reaches the target."""
    target = float(cloud_ok.mean()) - NEAR_CLOUD
    order = np.argsort(score, kind="stable")
    gains = np.cumsum(cloud_ok[order].astype(float) - edge_ok[order].astype(float))
    joint = (edge_ok.sum() + np.concatenate([[0.0], gains])) / len(score)
    reached = np.flatnonzero(joint >= target - 1e-12)
    return float(reached[0]) / len(score) if len(reached) else 1.0


def report(name: str, cache: Path) -> list[tuple[bool, str]]:
    built = build_scenario_packages(name, cache, latency_runs=20, progress=lambda m: None)
    scenario = get_scenario(name)
    test = scenario.test_data()
    model = load_verified(built.edge, [built.public_key])
    cloud = load_verified(built.cloud, [built.public_key])
    cascade = model.manifest.cascade
    assert cascade is not None
    variant = model.variant.name
    probabilities = model.predict(test.x).probabilities.astype(np.float64)
    edge_ok = np.asarray(model.predict(test.x).labels == test.y)
    cloud_ok = np.asarray(cloud.predict(test.x).labels == test.y)
    oracle = float(1 - edge_ok.mean())
    best = cascade.best_rule[variant]
    kind = "labelled generator" if scenario.synthetic else "real data"
    print(
        f"\n{name} ({kind}), edge {variant} on {len(test.y)} test rows: edge {edge_ok.mean():.2%}, "
        f"cloud {cloud_ok.mean():.2%}, oracle escalates {oracle:.2%}; package's best rule: {best}"
    )
    header = (
        f"  {'rule':<18}{'needed':>8}{'x oracle':>10}  |  {'5% budget: escalated':>20}"
        f"{'joint':>9}{'local err':>11}{'bound':>8}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    needed: dict[str, float] = {}
    checks: list[tuple[bool, str]] = []
    for rule in cascade.rules[variant]:
        score = model.escalation_rule(rule).score(probabilities)
        needed[rule] = needed_share(score, edge_ok, cloud_ok)
        chosen = cascade.at_budget(variant, BUDGET, rule)
        on_test = point_at(chosen.threshold, score, edge_ok, cloud_ok)
        kept = score >= chosen.threshold
        local_err = float(1 - edge_ok[kept].mean()) if kept.any() else 0.0
        mark = "*" if rule == best else " "
        print(
            f"  {rule + mark:<18}{needed[rule]:>8.2%}{needed[rule] / max(oracle, 1e-12):>9.2f}x"
            f"  |  {on_test.escalated:>20.2%}{on_test.accuracy:>9.2%}{local_err:>11.2%}"
            f"{chosen.local_error_bound or 0:>8.2%}"
        )
        checks.append(
            (
                abs(on_test.escalated - BUDGET) <= BUDGET_SLACK + 1e-12,
                f"{name} {rule}: asked for <= {BUDGET:.0%}, escalated {on_test.escalated:.2%} "
                f"of the test rows (goal {BUDGET:.0%} +- {BUDGET_SLACK:.0%})",
            )
        )
    sedna = make_rule("entropy").score(probabilities)  # Sedna's confidence_score, same formula
    hard = sedna < SEDNA_THRESHOLD
    joint = np.where(hard, cloud_ok, edge_ok).mean()
    print(
        f"  {'Sedna CrossEntropy':<18}{'':>8}{'':>10}  |  {hard.mean():>20.2%}{joint:>9.2%}"
        f"   (fixed threshold {SEDNA_THRESHOLD}, not tuned)"
    )
    ratio = needed[best] / max(oracle, 1e-12)
    checks.append(
        (
            needed[best] <= needed[DEFAULT_RULE] + 1e-12,
            f"{name}: best rule {best} needs {needed[best]:.2%}, max-probability "
            f"{needed[DEFAULT_RULE]:.2%} (never worse)",
        )
    )
    if name == "digits":
        checks.append(
            (
                ratio <= DIGITS_GOAL,
                f"digits: best rule {best} at {ratio:.2f}x the oracle rate (goal <= {DIGITS_GOAL}x;"
                f" max-probability {needed[DEFAULT_RULE] / max(oracle, 1e-12):.2f}x)",
            )
        )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--cache", type=Path, help="reuse packages built here (default: fresh)")
    args = parser.parse_args()
    checks: list[tuple[bool, str]] = []
    with tempfile.TemporaryDirectory(prefix="tierwise-router-") as tmp:
        cache = args.cache or Path(tmp)
        for name in args.scenarios.split(","):
            checks += report(name.strip(), cache)
    print("\n(* = the rule the package found best on its evaluation split, which the agent runs)")
    print("\ngoals")
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
