"""Escalation rules side by side: how close each cascade router gets to the oracle, in one run.

For each scenario (real data: digits, breast-cancer; labelled generators: vibration,
transactions) the data are cut five ways. For each fold in turn, the other four are split
60:20 into train and eval as a scenario does; the edge and cloud models are trained, the edge
model's out-of-fold outputs on the training part become the router data, and a real signed
package is built (`tierwise.package.build`): every escalation rule's curve fitted and drawn on
eval, the learned router exported to ONNX, the best rule chosen. The held-out fold is then
scored with each rule exactly as the edge agent does (`PackageModel.escalation_rule`), and
the five folds are pooled: every row of the data set is a test row once, for a model, rules
and thresholds that never saw it (digits: 1,797 test rows and ~32 edge errors, where its one
fixed test split has 360 and 7 — one row there moves a ratio by 0.15x).

Small data sets are cut again, with other seeds (repeated cross-validation), until at least
`--min-test-rows` test rows are pooled (default 3,000: digits 2 repeats, breast-cancer 6).
Why: a budget threshold is a tail quantile of the eval rows' scores. breast-cancer's folds
have 114 eval rows, where the 5% quantile moves a fold's test share by ~2 points by chance;
one 5-fold run pools 569 test rows and lands anywhere from 3% to 7.6% depending on the cut
(seen), so "5% +- 1 point" could not be told from chance. Repeats average that chance out and
measure what the procedure escalates, not how one cut fell.

Printed per rule:
- needed: the smallest share escalated (least sure first) for the joint answer to reach the
  cloud model's accuracy less 0.1 point, and its ratio to the oracle rate (the edge's error
  rate: what a router knowing the wrong answers would send);
- at a 5% budget: each fold's threshold for escalating at most 5% on its package's curve
  (`CascadeCalibration.at_budget`, ties at it broken as the agent does) applied to its test
  fold — the share escalated, the joint
  accuracy, the edge's error rate among the answers kept local, and the mean of the 95%
  bounds the curves promised for it;
- `package's choice`: the rule each fold's package found best on its eval split — what
  `tierwise up` deploys;
- KubeEdge Sedna's default hard-example filter: CrossEntropyFilter, threshold_cross_entropy
  0.5 (hard when 1 + sum(p log p) / log C < 0.5), as is.

Goals (issue 15): on digits the package's choice within 2x the oracle rate; the package's
choice never needs more than max-probability; a 5% budget escalates 5% +- 1 point.

    .venv/bin/python benchmarks/router.py [--scenarios digits,breast-cancer,...] [--folds 5]
                                          [--min-test-rows 3000]

Exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
from numpy.typing import NDArray

from tierwise.package.build import BuildOptions, build_package
from tierwise.package.keys import write_keypair
from tierwise.package.runtime import load_verified
from tierwise.rules.escalation import is_hard, tie_draws
from tierwise.rules.routers import DEFAULT_RULE, make_rule
from tierwise.scenarios import get_scenario
from tierwise.scenarios.base import SEED, Splits

SCENARIOS = ("digits", "breast-cancer", "vibration", "transactions")
CHOICE = "package's choice"
BUDGET = 0.05
BUDGET_SLACK = 0.01
NEAR_CLOUD = 0.001  # reach the cloud's accuracy less 0.1 point
DIGITS_GOAL = 2.0
SEDNA_THRESHOLD = 0.5  # CrossEntropyFilter's default threshold_cross_entropy


@dataclass
class Pooled:
    """Test rows of every fold, concatenated."""

    edge_ok: list[NDArray[np.bool_]] = field(default_factory=list)
    cloud_ok: list[NDArray[np.bool_]] = field(default_factory=list)
    scores: dict[str, list[NDArray[np.float64]]] = field(default_factory=lambda: defaultdict(list))
    at_budget: dict[str, list[NDArray[np.bool_]]] = field(default_factory=lambda: defaultdict(list))
    bounds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    chosen: list[str] = field(default_factory=list)


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


def run_fold(name: str, i: str, splits: Splits, root: Path, key: Path, pooled: Pooled) -> None:
    scenario = get_scenario(name)
    where = root / name / f"fold{i}"
    where.mkdir(parents=True, exist_ok=True)
    models = scenario.train(splits)
    edge_file, cloud_file = where / "edge.joblib", where / "cloud.joblib"
    joblib.dump(models.edge, edge_file)
    joblib.dump(models.cloud, cloud_file)
    data = scenario.eval_data(splits, source=f"scenario:{name}:fold{i}")
    options = BuildOptions(name, 1, key, cloud_file, latency_runs=5, force=True)
    build_package(edge_file, data, where / "package", options)
    model = load_verified(where / "package", [key.with_suffix(".pub")])
    cascade = model.manifest.cascade
    assert cascade is not None
    variant = model.variant.name  # the smallest: what the agent runs
    prediction = model.predict(splits.x_test)
    probabilities = prediction.probabilities.astype(np.float64)
    pooled.edge_ok.append(np.asarray(prediction.labels == splits.y_test))
    pooled.cloud_ok.append(np.asarray(models.cloud.predict(splits.x_test) == splits.y_test))
    best = cascade.best_rule[variant]
    pooled.chosen.append(best)
    draws = tie_draws(splits.x_test)  # as the agent breaks ties at a threshold
    for rule in cascade.rules[variant]:
        score = model.escalation_rule(rule).score(probabilities, splits.x_test)
        point = cascade.at_budget(variant, BUDGET, rule)
        hard = np.asarray(is_hard(score, point.threshold, point.tie_share, draws), dtype=bool)
        for label in [rule] + ([CHOICE] if rule == best else []):
            pooled.scores[label].append(score)
            pooled.at_budget[label].append(hard)
            pooled.bounds[label].append(point.local_error_bound or 0.0)
    sedna = make_rule("entropy").score(
        probabilities, splits.x_test
    )  # Sedna's confidence_score, same formula
    pooled.at_budget["Sedna CrossEntropy"].append(sedna < SEDNA_THRESHOLD)


def report(
    name: str, folds: int, min_test_rows: int, root: Path, key: Path
) -> list[tuple[bool, str]]:
    scenario = get_scenario(name)
    pooled = Pooled()
    rows = len(scenario.load()[1])
    repeats = max(1, math.ceil(min_test_rows / rows))
    for r in range(repeats):
        for i, splits in enumerate(scenario.cross_splits(folds, seed=SEED + r)):
            print(
                f"  … {name}: cut {r + 1} of {repeats}, fold {i + 1} of {folds}",
                file=sys.stderr,
                flush=True,
            )
            run_fold(name, f"{r}-{i}", splits, root, key, pooled)
    edge_ok, cloud_ok = np.concatenate(pooled.edge_ok), np.concatenate(pooled.cloud_ok)
    oracle = float(1 - edge_ok.mean())
    kind = "labelled generator" if scenario.synthetic else "real data"
    chosen = ", ".join(f"{r} x{pooled.chosen.count(r)}" for r in sorted(set(pooled.chosen)))
    cuts = f"{folds} folds" + (f" x {repeats} cuts" if repeats > 1 else "")
    print(
        f"\n{name} ({kind}), {cuts} pooled: {len(edge_ok)} test rows, edge "
        f"{edge_ok.mean():.2%}, cloud {cloud_ok.mean():.2%}, oracle escalates {oracle:.2%} "
        f"({int((~edge_ok).sum())} edge errors); packages chose {chosen}"
    )
    header = (
        f"  {'rule':<20}{'needed':>8}{'x oracle':>10}  |  {'5% budget: escalated':>20}"
        f"{'joint':>9}{'local err':>11}{'bound':>8}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    needed: dict[str, float] = {}
    checks: list[tuple[bool, str]] = []
    for label, parts in pooled.scores.items():
        needed[label] = needed_share(np.concatenate(parts), edge_ok, cloud_ok)
        hard = np.concatenate(pooled.at_budget[label])
        joint = float(np.where(hard, cloud_ok, edge_ok).mean())
        local_err = float(1 - edge_ok[~hard].mean()) if (~hard).any() else 0.0
        bound = float(np.mean(pooled.bounds[label]))
        print(
            f"  {label:<20}{needed[label]:>8.2%}{needed[label] / max(oracle, 1e-12):>9.2f}x"
            f"  |  {hard.mean():>20.2%}{joint:>9.2%}{local_err:>11.2%}{bound:>8.2%}"
        )
        if label != CHOICE:
            checks.append(
                (
                    abs(hard.mean() - BUDGET) <= BUDGET_SLACK + 1e-12,
                    f"{name} {label}: asked for <= {BUDGET:.0%}, escalated {hard.mean():.2%} of "
                    f"the test rows (goal {BUDGET:.0%} +- {BUDGET_SLACK:.0%})",
                )
            )
    sedna = np.concatenate(pooled.at_budget["Sedna CrossEntropy"])
    sedna_joint = float(np.where(sedna, cloud_ok, edge_ok).mean())
    print(
        f"  {'Sedna CrossEntropy':<20}{'':>8}{'':>10}  |  {sedna.mean():>20.2%}{sedna_joint:>9.2%}"
        f"   (fixed threshold {SEDNA_THRESHOLD}, not tuned)"
    )
    checks.append(
        (
            needed[CHOICE] <= needed[DEFAULT_RULE] + 1e-12,
            f"{name}: package's choice needs {needed[CHOICE]:.2%}, max-probability "
            f"{needed[DEFAULT_RULE]:.2%} (never worse)",
        )
    )
    if name == "digits":
        ratio = needed[CHOICE] / max(oracle, 1e-12)
        classic = needed[DEFAULT_RULE] / max(oracle, 1e-12)
        checks.append(
            (
                ratio <= DIGITS_GOAL,
                f"digits: package's choice at {ratio:.2f}x the oracle rate (goal <= "
                f"{DIGITS_GOAL}x; max-probability {classic:.2f}x)",
            )
        )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--min-test-rows",
        type=int,
        default=3000,
        help="cut small data sets again with other seeds until this many test rows are pooled",
    )
    args = parser.parse_args()
    checks: list[tuple[bool, str]] = []
    with tempfile.TemporaryDirectory(prefix="tierwise-router-") as tmp:
        private, _ = write_keypair(Path(tmp) / "keys")
        for name in args.scenarios.split(","):
            checks += report(name.strip(), args.folds, args.min_test_rows, Path(tmp), private)
    print("\ngoals")
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
