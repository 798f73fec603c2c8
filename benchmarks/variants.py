"""Every package variant side by side — fp32, INT8, distilled, pruned, sparse and combinations —
on real scenario data, and what the planner picks for each hardware profile.

Per scenario (default: digits, real; vibration, a labelled generator), in one run:

1. the scenario's models are trained and packaged with every variant kind (a real signed
   `tierwise package` build: ONNX Runtime latency at batch 1 and 32, one thread, variants
   timed interleaved), and the table shows size, MACs, accuracy on the evaluation split and
   on the held-out test split, p50 latencies and their ratio to fp32, and the gzip size
   (what a package travels as);
2. the sparse variant beside a dense re-export of the same graph: does unstructured
   sparsity shrink the ONNX file or speed it up? (measured, not assumed);
3. five-fold cross-validated accuracy (every row a test row once) of the teacher, the fp32
   edge model and the distilled-INT8 student: the evaluation split alone has 359 digits, where
   one row is 0.28 points;
4. the plan for one feature of the model on each hardware profile below: the variant the
   planner picks, and why the others lost.

Goals (issue 13): distilled-int8 <= 0.15x the fp32 edge model's size with accuracy no more
than 1 point below the cloud teacher (cross-validated); on vibration a variant faster than
fp32 at batch 1 where INT8 is not.

    .venv/bin/python benchmarks/variants.py [--scenarios digits vibration] [--runs 300]

Exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tierwise.package.build import BuildOptions, build_package
from tierwise.package.dense import dense_net, to_onnx
from tierwise.package.distill import DistillOptions
from tierwise.package.evaldata import EvalData
from tierwise.package.export import export_model, load_sklearn
from tierwise.package.keys import write_keypair
from tierwise.package.manifest import Manifest, VariantEntry
from tierwise.package.measure import Scorer, measure_latency
from tierwise.package.variants import KINDS, CompressOptions, build_variants
from tierwise.plan.planner import plan
from tierwise.scenarios import get_scenario
from tierwise.scenarios.build import train_scenario
from tierwise.spec import load_spec

MAX_SIZE_RATIO = 0.15
MAX_TEACHER_GAP_POINTS = 1.0
FOLDS = 5
ACCURACY_SLACK = 0.01  # the plans below accept a variant up to one point below fp32
# the student per scenario: wide enough to learn the teacher, still a fraction of the edge model
STUDENTS = {"digits": (256, 128), "vibration": (32,)}
# hardware a feature of the model could run on (latencies per MAC are typical figures of the
# class, stated as assumptions; docs/plan.md): name -> device class
MCU = {"latency_per_mac": "5ns", "int8_latency_per_mac": "2ns", "call_overhead": "1ms"}
PROFILES: dict[str, dict[str, Any]] = {
    "MCU 64KB (Cortex-M4 class)": {
        "compute": "0.2GFLOP/s",
        "memory": "64KB",
        "profile": {
            "latency_per_mac": "10ns",
            "int8_latency_per_mac": "4ns",
            "call_overhead": "1ms",
        },
    },
    "MCU 256KB (Cortex-M7 class)": {
        "compute": "0.4GFLOP/s",
        "memory": "256KB",
        "profile": {
            "latency_per_mac": "5ns",
            "int8_latency_per_mac": "2ns",
            "call_overhead": "1ms",
        },
    },
    "MCU 2MB (Cortex-M7 class)": {
        "compute": "0.4GFLOP/s",
        "memory": "2MB",
        "profile": {
            "latency_per_mac": "5ns",
            "int8_latency_per_mac": "2ns",
            "call_overhead": "1ms",
        },
    },
    "phone-class SoC (10x slower than the build core)": {
        "compute": "20GFLOP/s",
        "memory": "512MB",
        "profile": {"speed_vs_build": 0.1, "latency_per_mac": "0.5ns"},
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["digits", "vibration"])
    parser.add_argument("--runs", type=int, default=300, help="timed calls per variant and batch")
    args = parser.parse_args()
    checks: list[tuple[bool, str]] = []
    with tempfile.TemporaryDirectory(prefix="tierwise-variants-") as tmp:
        for name in args.scenarios:
            checks += report(name, Path(tmp) / name, args.runs)
    print("\ngoals")
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in checks) else 1


def report(name: str, work: Path, runs: int) -> list[tuple[bool, str]]:
    scenario = get_scenario(name)
    compress = CompressOptions(distill=DistillOptions(hidden=STUDENTS.get(name, (128,))))
    print(f"\n=== {name}: {scenario.summary}")
    files = train_scenario(name, work / "models")
    key, _ = write_keypair(work / "keys", "bench")
    clock = time.perf_counter()
    result = build_package(
        files.edge,
        scenario.eval_data(),
        work / "package",
        BuildOptions(
            name, 1, key, files.cloud, latency_runs=runs, variants=KINDS, compress=compress
        ),
    )
    print(f"built and signed every variant in {time.perf_counter() - clock:.0f} s")
    for note in result.notes:
        print(f"  note: {note}")
    manifest = result.manifest
    teacher = _teacher_accuracy(files.cloud, scenario.test_data())
    test = _test_accuracies(work / "package", manifest, scenario.test_data())
    _print_table(work / "package", manifest, test, teacher)
    _print_sparsity(files.edge, scenario.eval_data(), manifest, runs)
    cv = _cross_validated(name, compress)
    print(
        f"\n{FOLDS}-fold cross-validated accuracy ({cv['rows']} rows, each a test row once): "
        f"teacher {cv['teacher']:.2%}, fp32 edge {cv['fp32']:.2%}, "
        f"distilled-int8 {cv['distilled-int8']:.2%}"
    )
    _print_plans(work / "package", manifest)
    return _goals(name, manifest, cv)


def _teacher_accuracy(cloud: Path, data: EvalData) -> float:
    return float(np.mean(load_sklearn(cloud).predict(data.x) == data.y))


def _test_accuracies(package: Path, manifest: Manifest, data: EvalData) -> dict[str, float]:
    out = {}
    for v in manifest.variants:
        scorer = Scorer(
            (package / v.file).read_bytes(), manifest.input.name, manifest.output.probabilities
        )
        labels = np.asarray(manifest.output.classes)[scorer.probabilities(data.x).argmax(axis=1)]
        out[v.name] = float(np.mean(labels == data.y))
    return out


def _print_table(package: Path, manifest: Manifest, test: dict[str, float], teacher: float) -> None:
    assert manifest.cascade is not None
    ref = manifest.cascade.reference
    print(
        f"\nteacher (cloud {ref.name}): {ref.accuracy:.2%} on the evaluation split, "
        f"{teacher:.2%} on the test split"
    )
    fp32 = manifest.variant("fp32")
    head = (
        f"{'variant':<15}{'method':<10}{'quant':<8}{'size':>10}{'x fp32':>8}{'gzip':>10}"
        f"{'MACs/row':>10}{'acc eval':>10}{'acc test':>10}{'p50 b1':>10}{'x fp32':>8}"
        f"{'p50 b32':>10}{'x fp32':>8}"
    )
    print(head)
    for v in manifest.variants:
        b1, b32 = _p50(v, 1), _p50(v, 32)
        gz = len(gzip.compress((package / v.file).read_bytes(), 9))
        print(
            f"{v.name:<15}{v.method:<10}{v.quantization:<8}{_kb(v.size_bytes):>10}"
            f"{v.size_bytes / fp32.size_bytes:>8.3f}{_kb(gz):>10}"
            f"{'-' if v.macs is None else f'{v.macs:,}':>10}"
            f"{v.accuracy:>10.2%}{test[v.name]:>10.2%}"
            f"{b1 * 1000:>8.1f}us{_p50(fp32, 1) / b1:>8.2f}"
            f"{b32 * 1000:>8.1f}us{_p50(fp32, 32) / b32:>8.2f}"
        )


def _print_sparsity(edge: Path, data: EvalData, manifest: Manifest, runs: int) -> None:
    """The sparse graph against the same writer's dense graph of the unpruned weights."""
    from tierwise.package.pruning import PruneOptions, unstructured_prune

    net = dense_net(load_sklearn(edge))
    if isinstance(net, str):
        return
    exported = export_model(edge, data.x, data.y)
    dense = to_onnx(net, "dense", exported.input_name, exported.probabilities)
    assert data.x_calibration is not None
    sparse_net = unstructured_prune(net, data.x_calibration, PruneOptions(epochs=0))
    sparse = to_onnx(sparse_net, "sparse", exported.input_name, exported.probabilities)
    scorers = {
        "dense": Scorer(dense, exported.input_name, exported.probabilities),
        "sparse": Scorer(sparse, exported.input_name, exported.probabilities),
    }
    latency = measure_latency(scorers, data.x, (1, 32), runs)
    d1, s1 = latency["dense"][0].p50_ms, latency["sparse"][0].p50_ms
    d32, s32 = latency["dense"][1].p50_ms, latency["sparse"][1].p50_ms
    print(
        f"\nunstructured sparsity ({sparse_net.sparsity:.0%} of weights zero), same Gemm graph "
        f"written dense: file {_kb(len(sparse))} vs {_kb(len(dense))} "
        f"({len(sparse) / len(dense):.3f}x); gzip {_kb(len(gzip.compress(sparse, 9)))} vs "
        f"{_kb(len(gzip.compress(dense, 9)))}; p50 batch 1 {s1 * 1000:.1f} vs {d1 * 1000:.1f} us, "
        f"batch 32 {s32 * 1000:.1f} vs {d32 * 1000:.1f} us"
    )


def _cross_validated(name: str, compress: CompressOptions) -> dict[str, Any]:
    """Teacher, fp32 edge and distilled-int8 accuracy pooled over five test folds."""
    scenario = get_scenario(name)
    right = {"teacher": 0, "fp32": 0, "distilled-int8": 0}
    rows = 0
    for splits in scenario.cross_splits(FOLDS):
        models = scenario.train(splits)
        with tempfile.TemporaryDirectory() as tmp:
            import joblib

            edge, cloud = Path(tmp) / "edge.joblib", Path(tmp) / "cloud.joblib"
            joblib.dump(models.edge, edge)
            joblib.dump(models.cloud, cloud)
            data = scenario.eval_data(splits, router_data=False)
            exported = export_model(edge, data.x, data.y)
            made = build_variants(
                exported, edge, data, ("fp32", "distilled-int8"), cloud, compress, lambda _: None
            )
        classes = np.asarray(exported.classes)
        for kind, variant in made.variants.items():
            scorer = Scorer(variant.onnx, exported.input_name, exported.probabilities)
            predicted = classes[scorer.probabilities(splits.x_test).argmax(axis=1)]
            right[kind] += int(np.sum(predicted == splits.y_test))
        right["teacher"] += int(np.sum(models.cloud.predict(splits.x_test) == splits.y_test))
        rows += len(splits.y_test)
    return {"rows": rows, **{k: v / rows for k, v in right.items()}}


def _print_plans(package: Path, manifest: Manifest) -> None:
    """One feature of this model, raw data kept on the device, on each hardware profile."""
    floor = round(manifest.variant("fp32").accuracy - ACCURACY_SLACK, 4)
    print(
        f"\nplanner's pick per profile (deadline 50 ms, min accuracy {floor:.1%} = fp32's less "
        f"{ACCURACY_SLACK:.0%}, raw data stays on the device)"
    )
    for label, device in PROFILES.items():
        spec = {
            "name": "bench",
            "tiers": {
                "device": device,
                "edge": {"compute": "100GFLOP/s", "memory": "4GB", "cost": "$50/month"},
                "cloud": {"compute": "500GFLOP/s", "memory": "32GB", "price_per_call": "$0.20/1k"},
            },
            "sites": [{"name": "s1", "devices": 10}],
            "links": {
                "device_edge": {"rtt_p50": "1ms", "rtt_p99": "5ms", "bandwidth": "1Gbps"},
                "edge_cloud": {"rtt_p50": "40ms", "rtt_p99": "200ms", "bandwidth": "50Mbps"},
            },
            "models": [
                {
                    "name": "m",
                    "variants": [
                        {"name": v.name, "package": str(package / "manifest.json")}
                        for v in manifest.variants
                    ],
                }
            ],
            "features": [
                {
                    "name": "f",
                    "model": "m",
                    "rate": "1/s",
                    "payload": "1KB",
                    "deadline": "50ms",
                    "raw_data_may_reach": "device",
                    "min_accuracy": floor,
                }
            ],
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "spec.yaml"
            path.write_text(yaml.safe_dump(spec))
            try:
                result = plan(load_spec(path))
            except Exception as exc:  # an infeasible profile is a result too
                print(f"  {label:<50} nothing fits: {str(exc)[:160]}")
                continue
        [decision] = result.decisions
        lost = "; ".join(
            f"{a.label.removeprefix('device ')}: {_short(a.ruled_out_by)}"
            for a in decision.alternatives
            if a.placement == "device"
        )
        service = decision.outcome.latency
        print(f"  {label:<50} {decision.outcome.label:<22} p99 {service * 1000:.2f} ms")
        print(f"  {'':<50} others: {lost}")


def _short(reason: str) -> str:
    tie = "same cost; the plan's choice is more accurate or equal (tie)"
    return reason.replace(tie, "as cheap, not more accurate")


def _goals(name: str, manifest: Manifest, cv: dict[str, Any]) -> list[tuple[bool, str]]:
    fp32 = manifest.variant("fp32")
    checks = []
    student = next((v for v in manifest.variants if v.name == "distilled-int8"), None)
    if name == "digits" and student is not None:
        ratio = student.size_bytes / fp32.size_bytes
        checks.append(
            (
                ratio <= MAX_SIZE_RATIO,
                f"{name}: distilled-int8 size {ratio:.3f}x fp32 (<= {MAX_SIZE_RATIO})",
            )
        )
        gap = (cv["teacher"] - cv["distilled-int8"]) * 100
        checks.append(
            (
                gap <= MAX_TEACHER_GAP_POINTS,
                f"{name}: distilled-int8 {gap:.2f} points below the teacher, cross-validated "
                f"(<= {MAX_TEACHER_GAP_POINTS})",
            )
        )
    if name == "vibration":
        int8 = manifest.variant("int8")
        slower = _p50(int8, 1) >= _p50(fp32, 1)
        faster = [
            v.name for v in manifest.variants if _p50(v, 1) < _p50(fp32, 1) and v.name != "int8"
        ]
        checks.append(
            (
                slower,
                f"{name}: INT8 alone is not faster than fp32 at batch 1 "
                f"({_p50(fp32, 1) / _p50(int8, 1):.2f}x)",
            )
        )
        checks.append(
            (bool(faster), f"{name}: faster than fp32 at batch 1: {', '.join(faster) or 'none'}")
        )
    return checks


def _p50(v: VariantEntry, batch: int) -> float:
    stats = v.latency_at(batch)
    return float("nan") if stats is None else stats.p50_ms


def _kb(n: int) -> str:
    return f"{n / 1024:.1f}KiB"


if __name__ == "__main__":
    sys.exit(main())
