"""The manifest: canonical bytes, deterministic builds, relative paths only, curve helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tierwise.package.manifest import (
    CurvePoint,
    Manifest,
    manifest_bytes,
    parse_manifest,
    read_manifest,
)

from .support import Inputs, Keys, build


def _without_measurements(manifest: Manifest) -> dict[str, Any]:
    """The manifest minus what is measured on the machine (time), which differs run to run."""
    data = manifest.model_dump(mode="json")
    for variant in data["variants"]:
        variant.pop("latency")
    data["metrics"] = {k: v for k, v in data["metrics"].items() if "speedup" not in k}
    return data


def test_the_written_manifest_is_canonical(built: Path) -> None:
    raw = (built / "manifest.json").read_bytes()
    manifest = parse_manifest(raw)
    assert manifest_bytes(manifest) == raw
    data = json.loads(raw)
    assert list(data) == sorted(data)
    assert raw.endswith(b"}\n")


def test_the_same_inputs_give_the_same_package(
    built: Path, inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    build(inputs, again, keys)
    for name in ("model-fp32.onnx", "model-int8.onnx"):
        assert (again / name).read_bytes() == (built / name).read_bytes()
    first, second = read_manifest(built), read_manifest(again)
    assert first.files == second.files
    assert _without_measurements(first) == _without_measurements(second)
    assert [s.batch for v in second.variants for s in v.latency] == [1, 32, 1, 32]


def test_no_timestamps_or_machine_paths_in_the_signed_bytes(built: Path) -> None:
    text = (built / "manifest.json").read_text()
    assert str(built) not in text
    assert "/tmp" not in text
    assert "20" + "26-" not in text  # no dates
    build_info = read_manifest(built).build
    assert build_info.eval_data == "eval.npz"


@pytest.mark.parametrize("path", ["/etc/passwd", "../up.onnx", "a//b.onnx", "a\\b.onnx", "./x", ""])
def test_file_paths_must_stay_inside_the_package(built: Path, path: str) -> None:
    data = json.loads((built / "manifest.json").read_text())
    data["files"][path] = "0" * 64
    with pytest.raises(ValidationError, match="plain relative path"):
        Manifest.model_validate(data)


def test_a_variant_must_point_at_a_listed_file(built: Path) -> None:
    data = json.loads((built / "manifest.json").read_text())
    del data["files"]["model-int8.onnx"]
    with pytest.raises(ValidationError, match=r"file model-int8\.onnx is not listed"):
        Manifest.model_validate(data)


def test_threshold_helpers_pick_from_the_curve(built: Path) -> None:
    cascade = read_manifest(built).cascade
    assert cascade is not None
    curve = cascade.curve("int8")
    assert curve[0].escalated == 0.0
    assert curve[-1].escalated == 1.0
    assert curve[-1].accuracy == pytest.approx(cascade.reference.accuracy)
    best = cascade.threshold_for("int8", 0.15)
    spent = cascade.at_budget("int8", 0.15)
    assert best.escalated <= spent.escalated <= 0.15
    assert best.accuracy == max(p.accuracy for p in curve if p.escalated <= 0.15)


def test_threshold_for_prefers_fewer_escalations_on_ties() -> None:
    from tierwise.package.manifest import CascadeCalibration, Reference, RuleCurve

    points = [
        CurvePoint(threshold=0.0, escalated=0.0, accuracy=0.9),
        CurvePoint(threshold=0.5, escalated=0.05, accuracy=0.99),
        CurvePoint(threshold=0.9, escalated=0.10, accuracy=0.99),
        CurvePoint(threshold=0.99, escalated=0.20, accuracy=1.0),
    ]
    ref = Reference(name="r", kind="sklearn", sha256="0" * 64, accuracy=1.0, size_bytes=1)
    cascade = CascadeCalibration(
        reference=ref,
        rules={"int8": {"max_probability": RuleCurve(curve=points)}},
        best_rule={"int8": "max_probability"},
        oracle_escalated={"int8": 0.1},
    )
    assert cascade.threshold_for("int8", 0.15).escalated == 0.05
    assert cascade.at_budget("int8", 0.15).escalated == 0.10
    assert cascade.threshold_for("int8", 0.0).escalated == 0.0


def test_a_format_1_manifest_is_refused_naming_both_formats(built: Path) -> None:
    data = json.loads((built / "manifest.json").read_text())
    data["format"] = 1
    with pytest.raises(ValidationError, match="package format 1, this tierwise reads format 2"):
        Manifest.model_validate(data)
    with pytest.raises(ValueError, match="rebuild the package"):
        parse_manifest(json.dumps(data).encode())


def test_a_learned_rule_must_point_at_a_listed_file(built: Path) -> None:
    data = json.loads((built / "manifest.json").read_text())
    assert data["cascade"]["rules"]["int8"]["learned"]["file"] == "router-int8.onnx"
    del data["files"]["router-int8.onnx"]
    with pytest.raises(
        ValidationError, match=r"cascade int8 learned: file router-int8\.onnx is not listed"
    ):
        Manifest.model_validate(data)


def test_best_rule_must_name_a_rule_the_variant_has(built: Path) -> None:
    data = json.loads((built / "manifest.json").read_text())
    data["cascade"]["best_rule"]["fp32"] = "margin"
    Manifest.model_validate(data)  # a rule it has: fine
    del data["cascade"]["rules"]["fp32"]["margin"]
    with pytest.raises(ValidationError, match="cascade fp32: best_rule names no rule it has"):
        Manifest.model_validate(data)
    data["cascade"]["best_rule"]["fp32"] = "max_probability"
    del data["cascade"]["best_rule"]["int8"]
    with pytest.raises(ValidationError, match="cascade int8: best_rule names no rule it has"):
        Manifest.model_validate(data)


def test_a_rule_curve_is_asked_for_by_name(built: Path) -> None:
    cascade = read_manifest(built).cascade
    assert cascade is not None
    assert cascade.rule("int8") == cascade.rules["int8"][cascade.best_rule["int8"]]
    assert cascade.curve("int8", "margin") == cascade.rules["int8"]["margin"].curve
    assert cascade.rule("int8", "temperature").temperature is not None
    with pytest.raises(KeyError, match='no curve for rule "oracle"; the package has entropy'):
        cascade.rule("int8", "oracle")
