"""Digits package report: fp32 vs INT8 side by side, and the edge→cloud cascade on held-out data.

Builds the digits scenario's signed packages (edge: fp32 + INT8 with a cascade curve against
the cloud SVM; cloud: the SVM), then prints, in one run:

1. size, accuracy and ONNX Runtime latency (batch 1 and 32, p50/p99, one thread, variants
   timed interleaved so background load hits both alike) for fp32 and INT8, with ratios;
2. the cascade on the test split — data neither model trained on and the threshold was not
   chosen on: edge-only, cloud-only, and joint accuracy at the threshold the manifest's curve
   gives for escalating at most 15%, with the oracle escalation rate (the edge's error rate).

Targets (issue 3): INT8 size <= 0.35x fp32; INT8 not slower at batch 32; accuracy drop
<= 0.5 points; joint accuracy >= cloud-only - 0.5 points at <= 15% escalated.

    .venv/bin/python benchmarks/package_report.py [--runs 2000] [--cache DIR]

Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from tierwise.package.calibrate import point_at
from tierwise.package.manifest import LatencyStats, Manifest
from tierwise.package.measure import Scorer, measure_latency
from tierwise.package.runtime import load_verified
from tierwise.scenarios import get_scenario
from tierwise.scenarios.build import build_scenario_packages

BUDGET = 0.15
MAX_SIZE_RATIO = 0.35
MAX_DROP_POINTS = 0.5
MAX_JOINT_GAP_POINTS = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="timed calls per variant and batch")
    parser.add_argument("--cache", type=Path, help="reuse packages built here (default: fresh)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tierwise-report-") as tmp:
        cache = args.cache or Path(tmp)
        built = build_scenario_packages("digits", cache, progress=lambda m: print(f"  … {m}"))
        edge = built.edge_manifest
        print(f"\ndigits packages in {cache}: {edge.name} v{edge.version} and its cloud model")
        checks = report_variants(built.edge, edge, args.runs)
        checks += report_cascade(built.edge, built.cloud, built.public_key, edge)
    print("\ntargets")
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in checks) else 1


def report_variants(package: Path, manifest: Manifest, runs: int) -> list[tuple[bool, str]]:
    fp32, int8 = manifest.variant("fp32"), manifest.variant("int8")
    test = get_scenario("digits").test_data()
    scorers = {
        v.name: Scorer(
            (package / v.file).read_bytes(), manifest.input.name, manifest.output.probabilities
        )
        for v in (fp32, int8)
    }
    classes = np.asarray(manifest.output.classes)
    test_acc = {
        name: float(np.mean(classes[s.probabilities(test.x).argmax(axis=1)] == test.y))
        for name, s in scorers.items()
    }
    print(f"\ntiming fp32 and int8 interleaved, {runs} calls per batch size (one thread)…")
    latency = measure_latency(scorers, test.x, (1, 32), runs)

    rows = [
        (
            "size on disk",
            f"{fp32.size_bytes / 1024:.0f} KiB",
            f"{int8.size_bytes / 1024:.0f} KiB",
            f"{int8.size_bytes / fp32.size_bytes:.3f}x",
        ),
        (
            "accuracy, eval split",
            f"{fp32.accuracy:.2%}",
            f"{int8.accuracy:.2%}",
            f"{(int8.accuracy - fp32.accuracy) * 100:+.2f} pt",
        ),
        (
            "accuracy, test split",
            f"{test_acc['fp32']:.2%}",
            f"{test_acc['int8']:.2%}",
            f"{(test_acc['int8'] - test_acc['fp32']) * 100:+.2f} pt",
        ),
    ]
    for i, batch in enumerate((1, 32)):
        a, b = latency["fp32"][i], latency["int8"][i]
        rows.append((f"batch {batch:>2} p50", _ms(a.p50_ms), _ms(b.p50_ms), _speed(a, b, "p50_ms")))
        rows.append((f"batch {batch:>2} p99", _ms(a.p99_ms), _ms(b.p99_ms), _speed(a, b, "p99_ms")))
    title = "digits edge model (MLP 64-512-512-10)"
    print(f"\n{title:<40}{'fp32':>12}{'int8':>12}{'int8 vs fp32':>16}")
    for label, x, y, ratio in rows:
        print(f"{label:<40}{x:>12}{y:>12}{ratio:>16}")
    size_ratio = int8.size_bytes / fp32.size_bytes
    drop = max(fp32.accuracy - int8.accuracy, test_acc["fp32"] - test_acc["int8"]) * 100
    b32 = latency["fp32"][1].p50_ms / latency["int8"][1].p50_ms
    return [
        (size_ratio <= MAX_SIZE_RATIO, f"INT8 size {size_ratio:.3f}x fp32 (<= {MAX_SIZE_RATIO}x)"),
        (b32 >= 1.0, f"INT8 at batch 32 is {b32:.2f}x as fast as fp32 (p50; not slower)"),
        (
            drop <= MAX_DROP_POINTS,
            f"accuracy drop {drop:+.2f} points, worse split (<= {MAX_DROP_POINTS})",
        ),
    ]


def report_cascade(
    edge_dir: Path, cloud_dir: Path, public_key: Path, manifest: Manifest
) -> list[tuple[bool, str]]:
    assert manifest.cascade is not None
    test = get_scenario("digits").test_data()
    model = load_verified(edge_dir, [public_key], "int8")
    edge = model.predict(test.x)
    cloud = load_verified(cloud_dir, [public_key]).predict(test.x)
    edge_ok, cloud_ok = edge.labels == test.y, cloud.labels == test.y
    oracle = 1.0 - float(edge_ok.mean())
    print(f"\ncascade int8 → cloud SVM on the test split ({len(test.y)} samples: never trained on,")
    print("thresholds read from the manifest's curve, which was computed on the eval split)")
    print(f"  {'edge only (int8)':<48}{edge_ok.mean():>8.2%}")
    print(f"  {'cloud only (SVM)':<48}{cloud_ok.mean():>8.2%}")
    print(f"  {'oracle escalation (edge error rate)':<48}{oracle:>8.1%}")
    cascade = manifest.cascade
    rule = cascade.best_rule["int8"]  # the rule the package deploys without one named
    score = model.escalation_rule(rule).score(edge.probabilities, test.x)
    print(f"  escalation rule: {rule} (the package's choice)")
    picks = {
        f"budget {BUDGET:.0%}: most escalations <= budget": cascade.at_budget("int8", BUDGET, rule),
        "cheapest most-accurate point <= budget": cascade.threshold_for("int8", BUDGET, rule),
    }
    results = {}
    for label, chosen in picks.items():
        on_test = point_at(chosen.threshold, score, edge_ok, cloud_ok)
        results[label] = on_test
        print(
            f"  joint, {label:<41}{on_test.accuracy:>8.2%}   escalated {on_test.escalated:5.1%}"
            f"   (threshold {chosen.threshold:.4f}; eval: {chosen.escalated:.1%}, "
            f"{chosen.accuracy:.2%})"
        )
    at_budget = next(iter(results.values()))
    gap = (at_budget.accuracy - float(cloud_ok.mean())) * 100
    return [
        (
            at_budget.escalated <= BUDGET,
            f"escalated {at_budget.escalated:.1%} of test samples (<= {BUDGET:.0%})",
        ),
        (
            gap >= -MAX_JOINT_GAP_POINTS,
            f"joint accuracy {gap:+.2f} points vs cloud-only (>= -{MAX_JOINT_GAP_POINTS})",
        ),
    ]


def _ms(value: float) -> str:
    return f"{value:.3f} ms"


def _speed(fp32: LatencyStats, int8: LatencyStats, field: str) -> str:
    return f"{getattr(fp32, field) / getattr(int8, field):.2f}x faster"


if __name__ == "__main__":
    sys.exit(main())
