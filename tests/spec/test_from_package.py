"""Spec variants filled from a package manifest: measured figures in, precise errors out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.package.support import build, make_keys, write_inputs
from tests.small_specs import MINIMAL, cascade_model, varied

from tierwise.errors import SpecError
from tierwise.package.manifest import Manifest, read_manifest
from tierwise.plan.views import enumerate_candidates
from tierwise.spec import load_spec
from tierwise.spec.tiers import Placement

HEAD = """\
name: measured
tiers:
  device: {compute: 1GFLOP/s, memory: 64MB}
  edge: {compute: 100GFLOP/s, memory: 4GB, cost: $50/month}
  cloud: {compute: 500GFLOP/s, memory: 32GB, price_per_call: $0.20/1k}
sites:
  - {name: s1, devices: 10}
links:
  device_edge: {rtt_p50: 1ms, rtt_p99: 5ms, bandwidth: 1Gbps}
  edge_cloud: {rtt_p50: 40ms, rtt_p99: 200ms, bandwidth: 50Mbps}
models:
  - name: reader
    variants:
"""
VARIANTS = """\
      - name: fp32
        package: pkg/manifest.json
      - name: int8
        package: pkg
      - name: svm
        package: pkg/manifest.json#reference
        latency: {cloud: 2ms}
    cascade: {edge: int8, cloud: svm}
"""
FEATURES = """\
features:
  - name: read
    model: reader
    rate: 1/s
    payload: 256B
    deadline: 500ms
    min_accuracy: 94%  # the edge models alone miss it; a cascade does not
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pkg/: digits fp32 + int8 with a cascade against an SVM; plain/: no cascade."""
    root = tmp_path_factory.mktemp("measured")
    inputs = write_inputs(root / "inputs")
    keys = make_keys(root / "keys")
    build(inputs, root / "pkg", keys)
    build(inputs, root / "plain", keys, cloud=False)
    return root


def _spec(workdir: Path, variants: str, features: str = FEATURES, name: str = "spec.yaml") -> Path:
    path = workdir / name
    path.write_text(HEAD + variants + features)
    return path


def _manifest(workdir: Path) -> Manifest:
    return read_manifest(workdir / "pkg")


def test_measured_figures_fill_the_variants_and_the_curve(workdir: Path) -> None:
    spec = load_spec(_spec(workdir, VARIANTS))
    manifest = _manifest(workdir)
    model = spec.model("reader")
    for name in ("fp32", "int8"):
        entry = manifest.variant(name)
        variant = model.variant(name)
        assert variant.size == entry.size_bytes
        assert variant.accuracy == pytest.approx(entry.accuracy)
        batch1 = entry.latency_at(1)
        assert batch1 is not None
        assert variant.latency["edge"] == pytest.approx(batch1.mean_ms / 1000)
    assert manifest.cascade is not None
    svm = model.variant("svm")
    assert svm.accuracy == pytest.approx(manifest.cascade.reference.accuracy)
    assert svm.latency["cloud"] == pytest.approx(0.002)
    assert model.cascade is not None
    got = [x for p in model.cascade.curve for x in (p.escalated, p.accuracy)]
    want = [x for p in manifest.cascade.curve("int8") for x in (p.escalated, p.accuracy)]
    assert got == pytest.approx(want)


def test_plan_uses_the_measured_figures(workdir: Path) -> None:
    path = _spec(workdir, VARIANTS)
    run = subprocess.run(
        [sys.executable, "-m", "tierwise", "plan", str(path), "--json", "-"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)["features"][0]
    manifest = _manifest(workdir)
    assert manifest.cascade is not None
    measured = {v.name: v.accuracy for v in manifest.variants}
    curve = {p.escalated: p.accuracy for p in manifest.cascade.curve("int8")}
    assert plan["escalation_rate"] in curve  # a measured point, not an interpolation
    rejected = {a["label"]: a["ruled_out_by"] for a in plan["alternatives"]}
    assert plan["placement"] == "cascade"
    assert f"accuracy {measured['fp32']:.1%} < required 94.0%" in rejected["edge fp32"]


def test_the_package_path_is_relative_to_the_spec_file(workdir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "deep" / "specs"
    moved.mkdir(parents=True)
    shutil.copytree(workdir / "pkg", tmp_path / "deep" / "pkg")
    text = (HEAD + VARIANTS + FEATURES).replace("pkg", "../pkg")
    (moved / "spec.yaml").write_text(text)
    assert load_spec(moved / "spec.yaml").model("reader").variant("int8").accuracy is not None


def _error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_missing_package_names_file_line_and_field(workdir: Path) -> None:
    path = _spec(workdir, VARIANTS.replace("pkg/manifest.json\n", "nowhere/manifest.json\n"))
    line = _line_of(path, "nowhere")
    message = _error(path)
    assert message.startswith(f"{path}:{line} models[0].variants[0].package: cannot read ")
    assert "build it with tierwise package" in message


def test_an_unknown_package_variant_is_named(workdir: Path) -> None:
    path = _spec(workdir, VARIANTS.replace("package: pkg\n", "package: pkg#int4\n"))
    message = _error(path)
    assert f":{_line_of(path, 'pkg#int4')} models[0].variants[1].package" in message
    assert 'digits v1 has no variant "int4"; it has fp32, int8, reference' in message


def test_a_hand_typed_figure_beside_a_package_is_refused(workdir: Path) -> None:
    variants = VARIANTS.replace(
        "        package: pkg\n",
        "        package: pkg\n        size: 1MB\n        latency: {edge: 1ms}\n",
    )
    path = _spec(workdir, variants)
    message = _error(path)
    assert (
        f":{_line_of(path, 'size: 1MB')} models[0].variants[1].size: comes from the package"
        in message
    )
    assert "models[0].variants[1].latency.edge: comes from the package" in message


def test_a_hand_typed_curve_beside_a_measured_one_is_refused(workdir: Path) -> None:
    variants = VARIANTS.replace(
        "{edge: int8, cloud: svm}",
        "{edge: int8, cloud: svm, curve: [{escalated: 0%, accuracy: 90%}]}",
    )
    message = _error(_spec(workdir, variants))
    assert "models[0].cascade.curve: comes from the package of variant int8; remove it" in message


def test_the_reference_needs_a_cloud_speed(workdir: Path) -> None:
    path = _spec(workdir, VARIANTS.replace("        latency: {cloud: 2ms}\n", ""))
    assert "models[0].variants[2].package: a package does not measure its reference" in _error(path)


def test_a_package_without_a_cloud_model_has_no_reference(workdir: Path) -> None:
    path = _spec(workdir, VARIANTS.replace("pkg/manifest.json#reference", "plain#reference"))
    assert "has no cascade reference (it was built without --cloud-model)" in _error(path)


def test_a_file_that_is_not_a_manifest_is_refused(workdir: Path) -> None:
    (workdir / "junk.json").write_text('{"name": "x"}')
    path = _spec(workdir, VARIANTS.replace("package: pkg\n", "package: junk.json\n"))
    assert "junk.json is not a package manifest: version: Field required" in _error(path)


def test_validate_exits_2_on_a_package_error(workdir: Path) -> None:
    path = _spec(workdir, VARIANTS.replace("package: pkg\n", "package: absent\n"))
    run = subprocess.run(
        [sys.executable, "-m", "tierwise", "validate", str(path)], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "models[0].variants[1].package: cannot read" in run.stderr


def test_the_spec_does_not_import_the_package_module(workdir: Path) -> None:
    path = _spec(workdir, VARIANTS)
    code = (
        "import sys; from tierwise.spec import load_spec; "
        f"load_spec({str(path)!r}); "
        "print(sorted(m for m in sys.modules if m.startswith('tierwise.package') "
        "or m in ('onnxruntime', 'cryptography')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def _with_cascade(extra: str) -> str:
    return VARIANTS.replace("{edge: int8, cloud: svm}", "{edge: int8, cloud: svm, " + extra + "}")


def _points(curve: list[Any]) -> list[float]:
    return [x for p in curve for x in (p.escalated, p.accuracy)]


@pytest.mark.parametrize("rule", ["margin", "temperature", "max_probability"])
def test_a_cascade_rule_takes_that_rules_curve_from_the_package(workdir: Path, rule: str) -> None:
    spec = load_spec(_spec(workdir, _with_cascade(f"rule: {rule}")))
    cascade = spec.model("reader").cascade
    assert cascade is not None
    assert cascade.rule == rule
    manifest = _manifest(workdir)
    assert manifest.cascade is not None
    want = _points(manifest.cascade.curve("int8", rule))
    assert _points(cascade.curve) == pytest.approx(want)
    # the curves differ from the one taken by default, so the choice is visible
    assert want != _points(manifest.cascade.curve("int8"))


def test_without_a_rule_the_packages_best_rule_is_taken_and_named(workdir: Path) -> None:
    cascade = load_spec(_spec(workdir, VARIANTS)).model("reader").cascade
    assert cascade is not None
    manifest = _manifest(workdir)
    assert manifest.cascade is not None
    assert cascade.rule == manifest.cascade.best_rule["int8"]


def test_an_unknown_rule_is_an_error_at_its_field(workdir: Path) -> None:
    path = _spec(workdir, _with_cascade("rule: oracle"))
    message = _error(path)
    assert f"{path}:{_line_of(path, 'rule: oracle')} models[0].cascade.rule: " in message
    assert "the package has no oracle curve; it has entropy, learned, margin" in message


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("learned", "a learned router needs enough wrong edge answers in the build's data"),
        ("prototypes", "the prototypes rule needs the router rows' inputs (router_x) in the "),
    ],
)
def test_a_rule_the_package_did_not_fit_is_named_with_why(
    workdir: Path, tmp_path: Path, rule: str, why: str
) -> None:
    """A valid rule name with no curve in this package (a learned router needs wrong answers
    to learn from, the prototypes the router rows' inputs: this package's evaluation data
    has none, so it lacks prototypes as built)."""
    package = Path(shutil.copytree(workdir / "pkg", tmp_path / "pkg"))
    data = json.loads((package / "manifest.json").read_text())
    assert "prototypes" not in data["cascade"]["rules"]["int8"]
    data["cascade"]["rules"]["int8"].pop(rule, None)
    data["cascade"]["best_rule"]["int8"] = "max_probability"
    (package / "manifest.json").write_text(json.dumps(data))
    path = _spec(tmp_path, _with_cascade(f"rule: {rule}"))
    message = _error(path)
    assert f"models[0].cascade.rule: the package has no {rule} curve ({why}" in message
    assert "; it has entropy, " in message


def test_a_hand_written_cascade_names_its_rule_from_the_known_ones(tmp_path: Path) -> None:
    model = cascade_model(
        "m",
        {"name": "small", "flops": "3MFLOP", "size": "1MB", "accuracy": "90%"},
        {"name": "big", "flops": "30MFLOP", "size": "4MB", "accuracy": "97%"},
        {"0%": "90%", "20%": "97%"},
    )
    model["cascade"]["rule"] = "oracle"
    path = tmp_path / "hand.yaml"
    path.write_text(yaml.safe_dump(varied(MINIMAL, models=[model])))
    message = _error(path)
    assert "models[0].cascade.rule" in message
    known = "'max_probability', 'margin', 'entropy', 'temperature', 'learned' or 'prototypes'"
    assert known in message
    model["cascade"]["rule"] = "entropy"
    path.write_text(yaml.safe_dump(varied(MINIMAL, models=[model])))
    cascade = load_spec(path).model("m").cascade
    assert cascade is not None
    assert cascade.rule == "entropy"


def test_max_escalated_keeps_the_plan_to_the_packages_points_within_it(workdir: Path) -> None:
    manifest = _manifest(workdir)
    assert manifest.cascade is not None
    curve = manifest.cascade.curve("int8")
    spec = load_spec(_spec(workdir, _with_cascade("max_escalated: 10%")))
    (candidates,) = enumerate_candidates(spec)
    cascades = [c for c in candidates if c.placement is Placement.CASCADE]
    within = [c.escalated for c in cascades if not c.violations]
    assert within == pytest.approx([p.escalated for p in curve if 0 < p.escalated <= 0.10])
    over = [c for c in cascades if c.escalated > 0.10]
    assert over  # there were points to rule out, each said why
    assert all(c.violations == [f"escalates {c.escalated:.1%} > budget 10.0%"] for c in over)
