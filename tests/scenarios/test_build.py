"""Scenario packages: built once, cached, verified; the digits package meets its targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tierwise.package.calibrate import point_at
from tierwise.package.keys import write_keypair
from tierwise.package.runtime import load_verified
from tierwise.package.verify import verify_package
from tierwise.scenarios import get_scenario
from tierwise.scenarios.build import ScenarioPackages, build_scenario_packages

RUNS = 5  # latency is measured, not judged, here


def test_packages_are_built_verified_and_then_reused(tmp_path: Path) -> None:
    built = build_scenario_packages("breast-cancer", tmp_path, latency_runs=RUNS)
    assert verify_package(built.edge, [built.public_key]).name == "breast-cancer"
    assert verify_package(built.cloud, [built.public_key]).name == "breast-cancer-cloud"
    # the edge model is a tree: nothing to quantize, so fp32 only; the cascade is calibrated
    assert [v.name for v in built.edge_manifest.variants] == ["fp32"]
    assert built.edge_manifest.cascade is not None
    stamp = (built.edge / "manifest.json").stat().st_mtime_ns
    again = build_scenario_packages("wearable", tmp_path, latency_runs=RUNS)  # the alias
    assert (again.edge / "manifest.json").stat().st_mtime_ns == stamp
    assert again.edge_manifest == built.edge_manifest


def test_a_tampered_cache_is_rebuilt(tmp_path: Path) -> None:
    key, _ = write_keypair(tmp_path / "mine")
    built = build_scenario_packages("transactions", tmp_path / "cache", key, latency_runs=RUNS)
    (built.edge / "model-fp32.onnx").write_bytes(b"tampered")
    rebuilt = build_scenario_packages("transactions", tmp_path / "cache", key, latency_runs=RUNS)
    assert verify_package(rebuilt.edge, [rebuilt.public_key]).version == 1
    x = get_scenario("transactions").test_data().x
    assert load_verified(rebuilt.edge, [rebuilt.public_key]).predict(x).labels.shape == (len(x),)


@pytest.mark.slow
def test_the_digits_package_meets_its_size_accuracy_and_cascade_targets(
    digits_packages: ScenarioPackages,
) -> None:
    """Issue 3's targets that do not depend on timing (the report prints those too)."""
    built = digits_packages
    manifest = built.edge_manifest
    fp32, int8 = manifest.variant("fp32"), manifest.variant("int8")
    assert int8.quantization == "static"
    assert int8.size_bytes <= 0.35 * fp32.size_bytes
    test = get_scenario("digits").test_data()
    full = load_verified(built.edge, [built.public_key], "fp32").predict(test.x)
    int8_model = load_verified(built.edge, [built.public_key], "int8")
    small = int8_model.predict(test.x)
    cloud = load_verified(built.cloud, [built.public_key]).predict(test.x)
    assert (fp32.accuracy - int8.accuracy) * 100 <= 0.5  # eval split
    assert (np.mean(full.labels == test.y) - np.mean(small.labels == test.y)) * 100 <= 0.5
    assert manifest.cascade is not None
    rule = manifest.cascade.best_rule["int8"]  # what at_budget picks without a rule named
    chosen = manifest.cascade.at_budget("int8", 0.15)
    score = int8_model.escalation_rule(rule).score(small.probabilities, test.x)
    joint = point_at(chosen.threshold, score, small.labels == test.y, cloud.labels == test.y)
    assert joint.escalated <= 0.15
    assert joint.accuracy >= np.mean(cloud.labels == test.y) - 0.005


def test_scenario_commands(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tierwise", "scenario", "list"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "SYNTHETIC" in run.stdout
    assert "wearable" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "tierwise", "scenario", "train", "banks", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "transactions-cloud.joblib",
        "transactions-edge.joblib",
        "transactions-eval.npz",
        "transactions-test.npz",
    ]
