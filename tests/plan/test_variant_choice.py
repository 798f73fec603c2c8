"""The planner picks among a package's variants per device class by memory, deadline and accuracy,
timing each by the class's hardware profile (spec HardwareProfile), and says why others lost."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from tests.small_specs import MINIMAL, varied

from tierwise.errors import InfeasibleError
from tierwise.package.build import BuildOptions, build_package
from tierwise.package.distill import DistillOptions
from tierwise.package.evaldata import load_eval_data
from tierwise.package.manifest import Manifest, read_manifest
from tierwise.plan.candidates import service_time
from tierwise.plan.planner import PlanResult, plan
from tierwise.spec import Spec, load_spec
from tierwise.spec.tiers import Tier

if TYPE_CHECKING:
    from tierwise.scenarios.build import ScenarioPackages

VARIANTS = ("fp32", "int8", "distilled", "distilled-int8")
# a Cortex-M7-class sensor node: ~5 ns per fp32 MAC, ~2 ns with CMSIS-NN's INT8 SIMD
MCU = {"latency_per_mac": "5ns", "int8_latency_per_mac": "2ns", "call_overhead": "1ms"}


@pytest.fixture(scope="module")
def digits_variants(
    digits_packages: ScenarioPackages, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The digits scenario's edge MLP (512x512) and SVM, packaged with a small distilled
    student: a quick one (the benchmark trains the real one)."""
    from tierwise.package.variants import CompressOptions

    models = digits_packages.edge.parent / "models"
    out = tmp_path_factory.mktemp("variants") / "digits"
    options = BuildOptions(
        "digits",
        1,
        digits_packages.public_key.parent / "scenarios.key",
        models / "digits-cloud.joblib",
        latency_runs=5,
        variants=VARIANTS,
        compress=CompressOptions(distill=DistillOptions(hidden=(64,), epochs=8, mixup_copies=2)),
    )
    data = load_eval_data(models / "digits-eval.npz")
    build_package(models / "digits-edge.joblib", data, out, options)
    return out


def _spec(package: Path, tmp_path: Path, memory: str, allowed: list[str] | None = None) -> Spec:
    data: dict[str, Any] = varied(
        MINIMAL,
        name="sensors",
        tiers__device_classes={"sensor": {"compute": "1GFLOP/s", "memory": memory, "profile": MCU}},
        sites=[{"name": "s1", "devices": {"sensor": 20}}],
        models=[
            {
                "name": "digits",
                "variants": [{"name": v, "package": f"{package}/manifest.json"} for v in VARIANTS],
            }
        ],
        features=[
            {
                "name": "read",
                "model": "digits",
                "device_class": "sensor",
                "rate": "1/s",
                "payload": "256B",
                "deadline": "50ms",
                "raw_data_may_reach": "device",  # the pixels may not leave the sensor
                "min_accuracy": "90%",
                **({"variants": allowed} if allowed else {}),
            }
        ],
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_spec(path)


def _chosen(result: PlanResult) -> tuple[str, str]:
    [decision] = result.decisions
    return decision.outcome.placement, decision.outcome.variant


def test_a_256kb_device_runs_the_distilled_variant(digits_variants: Path, tmp_path: Path) -> None:
    manifest = read_manifest(digits_variants)
    assert manifest.variant("int8").size_bytes > 256_000  # what it could run before
    result = plan(_spec(digits_variants, tmp_path, "256KB"))
    placement, variant = _chosen(result)
    assert placement == "device"
    assert variant.startswith("distilled")
    [decision] = result.decisions
    lost = {a.label: a.ruled_out_by for a in decision.alternatives}
    assert "needs 1.2MB > 256.0KB device memory" in lost["device fp32"]
    assert "> 256.0KB device memory" in lost["device int8"]


def test_without_the_distilled_variants_nothing_fits_the_256kb_device(
    digits_variants: Path, tmp_path: Path
) -> None:
    spec = _spec(digits_variants, tmp_path, "256KB", allowed=["fp32", "int8"])
    with pytest.raises(InfeasibleError, match=r"> 256\.0KB device memory"):
        plan(spec)


def test_a_big_device_runs_the_full_model_or_int8(digits_variants: Path, tmp_path: Path) -> None:
    manifest = read_manifest(digits_variants)
    result = plan(_spec(digits_variants, tmp_path, "64MB"))
    placement, variant = _chosen(result)
    assert placement == "device"
    assert variant in {"fp32", "int8"}
    best = max(manifest.variants, key=lambda v: v.accuracy)
    assert manifest.variant(variant).accuracy == best.accuracy  # all fit: the most accurate
    [decision] = result.decisions
    lost = {a.label: a.ruled_out_by for a in decision.alternatives}
    assert "more accurate" in lost["device distilled-int8"]


def test_the_profile_times_each_variant_by_its_macs(digits_variants: Path, tmp_path: Path) -> None:
    manifest: Manifest = read_manifest(digits_variants)
    spec = _spec(digits_variants, tmp_path, "64MB")
    model = spec.model("digits")
    for name, per_mac in (("fp32", 5e-9), ("int8", 2e-9), ("distilled", 5e-9)):
        macs = manifest.variant(name).macs
        assert macs is not None
        expected = 1e-3 + macs * per_mac
        got = service_time(spec, model.variant(name), Tier.DEVICE, "sensor")
        assert got == pytest.approx(expected)
    # the 512x512 MLP: 0.3M MACs, 1.6 ms at 5 ns; the student a fraction of it
    assert manifest.variant("fp32").macs == 64 * 512 + 512 * 512 + 512 * 10
