"""Hardware profiles on device classes and gateways: how a variant's figures become its time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.small_specs import MINIMAL, varied

from tierwise.errors import SpecError
from tierwise.plan.candidates import service_time
from tierwise.spec import Spec, load_spec
from tierwise.spec.model import HardwareProfile, Variant
from tierwise.spec.tiers import Tier

MANIFEST = {
    "name": "m",
    "version": 1,
    "variants": [
        {
            "name": "fp32",
            "size_bytes": 1_200_000,
            "accuracy": 0.98,
            "quantization": "none",
            "macs": 300_000,
            "latency": [{"batch": 1, "mean_ms": 0.04}],
        },
        {
            "name": "tree",
            "size_bytes": 9_000,
            "accuracy": 0.9,
            "quantization": "none",
            "macs": None,
            "latency": [{"batch": 1, "mean_ms": 0.01}],
        },
    ],
}


def _load(tmp_path: Path, data: dict[str, Any]) -> Spec:
    (tmp_path / "pkg").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "manifest.json").write_text(json.dumps(MANIFEST))
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_spec(path)


def _packaged(**tiers: Any) -> dict[str, Any]:
    return varied(
        MINIMAL,
        models__0__variants=[
            {"name": "fp32", "package": "pkg"},
            {"name": "tree", "package": "pkg"},
        ],
        **tiers,
    )


def test_macs_times_the_per_mac_latency_plus_the_call_overhead() -> None:
    profile = HardwareProfile.model_validate(
        {"latency_per_mac": "5ns", "int8_latency_per_mac": "2ns", "call_overhead": "1ms"}
    )
    fp32 = Variant.model_validate({"name": "a", "macs": 300_000})
    int8 = Variant.model_validate({"name": "b", "macs": 300_000, "quantized": True})
    assert profile.service(fp32) == pytest.approx(1e-3 + 300_000 * 5e-9)
    assert profile.service(int8) == pytest.approx(1e-3 + 300_000 * 2e-9)
    assert profile.service(Variant.model_validate({"name": "c", "flops": "1MFLOP"})) is None


def test_a_profile_needs_a_model_of_speed(tmp_path: Path) -> None:
    data = varied(MINIMAL, tiers__device__profile={"call_overhead": "1ms"})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="give latency_per_mac"):
        load_spec(path)


def test_a_device_profile_times_packaged_variants_by_macs_or_measured_speed(
    tmp_path: Path,
) -> None:
    profile = {"latency_per_mac": "10ns", "speed_vs_build": 0.1}
    spec = _load(tmp_path, _packaged(tiers__device__profile=profile))
    model = spec.model("m")
    fp32, tree = model.variant("fp32"), model.variant("tree")
    assert (fp32.macs, fp32.quantized) == (300_000, False)
    assert service_time(spec, fp32, Tier.DEVICE, "device") == pytest.approx(300_000 * 10e-9)
    # a tree has no MACs: its build-machine time, ten times slower
    assert service_time(spec, tree, Tier.DEVICE, "device") == pytest.approx(0.01e-3 / 0.1)
    # no edge profile: the gateway runs at the build machine's measured speed, as before
    assert fp32.latency[Tier.EDGE] == pytest.approx(0.04e-3)


def test_a_gateway_profile_replaces_the_build_machine_timing(tmp_path: Path) -> None:
    spec = _load(tmp_path, _packaged(tiers__edge__profile={"speed_vs_build": 0.5}))
    fp32 = spec.model("m").variant("fp32")
    assert Tier.EDGE not in fp32.latency
    assert fp32.build_latency == pytest.approx(0.04e-3)
    assert service_time(spec, fp32, Tier.EDGE, "device") == pytest.approx(0.08e-3)


def test_figures_from_a_package_may_not_be_typed_too(tmp_path: Path) -> None:
    data = _packaged()
    data["models"][0]["variants"][0]["macs"] = 5
    with pytest.raises(
        SpecError, match=r"models\[0\]\.variants\[0\]\.macs: comes from the package"
    ):
        _load(tmp_path, data)
