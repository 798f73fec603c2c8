"""Distilled, pruned and sparse variants: built, measured, signed, refused when tampered with,
installed and run like fp32 and INT8 (package/variants.py)."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from tests.small_specs import MINIMAL, varied

from tierwise.errors import EXIT_BAD_INPUT, UsageError, VerificationError
from tierwise.package.build import BuildOptions, BuildResult, build_package
from tierwise.package.dense import dense_net, to_onnx
from tierwise.package.distill import DistillOptions
from tierwise.package.evaldata import EvalData, load_eval_data
from tierwise.package.install import install_package, installed_version
from tierwise.package.manifest import read_manifest
from tierwise.package.measure import Scorer
from tierwise.package.pruning import PruneOptions
from tierwise.package.runtime import load_verified
from tierwise.package.variants import CompressOptions, compress_options, parse_variants
from tierwise.package.verify import verify_package

from .support import LATENCY_RUNS, Inputs, Keys, digits, train

Cli = Callable[..., tuple[int, str, str]]
ALL = "fp32,int8,distilled,distilled-int8,pruned,pruned-int8,sparse"
# small and quick: these tests check what is built, not how good it gets (benchmarks/variants.py)
FAST = CompressOptions(
    distill=DistillOptions(hidden=(32,), epochs=25, mixup_copies=3),
    prune=PruneOptions(epochs=2, mixup_copies=1),
)
NEW_KINDS = ["distilled", "distilled-int8", "pruned", "pruned-int8", "sparse"]


def _build(
    inputs: Inputs, keys: Keys, out: Path, variants: str = ALL, model: Path | None = None
) -> BuildResult:
    options = BuildOptions(
        "digits",
        1,
        keys.private,
        inputs.cloud,
        latency_runs=LATENCY_RUNS,
        variants=parse_variants(variants),
        compress=FAST,
    )
    return build_package(model or inputs.edge, load_eval_data(inputs.data), out, options)


@pytest.fixture(scope="module")
def every_variant(tmp_path_factory: pytest.TempPathFactory, inputs: Inputs, keys: Keys) -> Path:
    """digits with every variant kind. Never modify: copy it."""
    out = tmp_path_factory.mktemp("variants") / "digits-all"
    _build(inputs, keys, out)
    return out


def test_every_kind_is_built_measured_and_calibrated(every_variant: Path) -> None:
    manifest = read_manifest(every_variant)
    by_name = {v.name: v for v in manifest.variants}
    assert list(by_name) == ALL.split(",")
    methods = {name: v.method for name, v in by_name.items()}
    assert methods == {
        "fp32": "export",
        "int8": "export",
        "distilled": "distilled",
        "distilled-int8": "distilled",
        "pruned": "pruned",
        "pruned-int8": "pruned",
        "sparse": "sparse",
    }
    for name, base in (
        ("int8", "fp32"),
        ("distilled-int8", "distilled"),
        ("pruned-int8", "pruned"),
    ):
        assert by_name[name].quantization == "static"
        assert by_name[name].size_bytes < by_name[base].size_bytes
    for v in manifest.variants:
        assert {s.batch for s in v.latency} == {1, 32}
        assert v.accuracy > 0.6, v.name  # short training, but far above the 10% of chance
    assert manifest.cascade is not None
    assert set(manifest.cascade.rules) == set(by_name)  # every variant has its rule curves
    assert "distilled_int8_size_ratio" in manifest.metrics


def test_structured_pruning_removes_hidden_units_and_shrinks_the_onnx(every_variant: Path) -> None:
    manifest = read_manifest(every_variant)
    fp32, pruned = manifest.variant("fp32"), manifest.variant("pruned")
    # the edge MLP is 64-64-10; half of its 64 hidden units remain
    assert fp32.macs == 64 * 64 + 64 * 10
    assert pruned.macs == 64 * 32 + 32 * 10
    assert pruned.size_bytes < 0.6 * fp32.size_bytes
    graph = onnx.load(str(every_variant / pruned.file)).graph
    assert {n.op_type for n in graph.node} == {"Gemm", "Relu", "Softmax"}
    widths = sorted(tuple(t.dims) for t in graph.initializer if len(t.dims) == 2)
    assert widths == [(32, 10), (64, 32)]


def test_unstructured_sparsity_leaves_the_dense_onnx_as_large(every_variant: Path) -> None:
    manifest = read_manifest(every_variant)
    fp32, sparse = manifest.variant("fp32"), manifest.variant("sparse")
    assert sparse.sparsity == pytest.approx(0.8, abs=0.01)
    assert sparse.macs == fp32.macs
    # the zeros are stored as floats: the file is no smaller, only its compressed copy is
    assert sparse.size_bytes > 0.9 * fp32.size_bytes
    raw = (every_variant / sparse.file).read_bytes()
    dense = (every_variant / fp32.file).read_bytes()
    assert len(gzip.compress(raw)) < 0.6 * len(gzip.compress(dense))


def test_the_measured_accuracy_is_what_the_installed_variant_gives(
    every_variant: Path, inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    data = load_eval_data(inputs.data)
    target = tmp_path / "gateway"
    install_package(every_variant, target, [keys.public])
    assert installed_version(target) == 1
    for entry in read_manifest(every_variant).variants:
        model = load_verified(target / "current", [keys.public], variant=entry.name)
        labels = model.predict(data.x).labels
        assert float(np.mean(labels == data.y)) == pytest.approx(entry.accuracy), entry.name
        assert model.escalation_rule() is not None


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_a_tampered_variant_is_refused_and_not_installed(
    every_variant: Path, keys: Keys, tmp_path: Path, kind: str
) -> None:
    package = Path(shutil.copytree(every_variant, tmp_path / "digits"))
    file = package / f"model-{kind}.onnx"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match=f"model-{kind}.onnx was changed after signing"):
        verify_package(package, [keys.public])
    with pytest.raises(VerificationError):
        install_package(package, tmp_path / "gateway", [keys.public])
    assert installed_version(tmp_path / "gateway") is None


def test_the_edge_agent_installs_and_probes_a_package_of_new_variants(
    every_variant: Path, keys: Keys, tmp_path: Path
) -> None:
    from tierwise.edge.packages import SignedPackages

    ops = SignedPackages((keys.public,))
    assert ops.install(every_variant, tmp_path / "gw") == 1
    current = ops.current(tmp_path / "gw")
    assert current is not None
    model = ops.load(current)
    ops.probe(model)  # the smallest variant runs: distilled-int8 here


def test_the_student_graph_computes_what_the_numpy_net_does() -> None:
    net = dense_net(train("mlp"))
    assert not isinstance(net, str)
    x = digits()[2][:50]
    scorer = Scorer(to_onnx(net, "t", "X", "probs"), "X", "probs")
    np.testing.assert_allclose(scorer.probabilities(x), net.probabilities(x), atol=1e-5)


def test_a_tree_gets_a_distilled_variant_and_a_note_instead_of_a_pruned_one(
    inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    import joblib

    tree = tmp_path / "tree.joblib"
    joblib.dump(train("tree"), tree)
    result = _build(inputs, keys, tmp_path / "pkg", "fp32,distilled,pruned", model=tree)
    assert [v.name for v in result.manifest.variants] == ["fp32", "distilled"]
    assert result.manifest.variant("fp32").macs is None  # a tree multiplies no matrices
    assert any(
        "no pruned variants: a DecisionTreeClassifier, which has no hidden units" in note
        for note in result.notes
    )


def test_without_training_inputs_nothing_is_trained_on_the_evaluation_rows(
    inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    data = load_eval_data(inputs.data)
    bare = EvalData(data.x, data.y, None, "eval.npz")
    options = BuildOptions(
        "digits", 1, keys.private, None, latency_runs=2, variants=("fp32", "distilled")
    )
    result = build_package(inputs.edge, bare, tmp_path / "pkg", options)
    assert [v.name for v in result.manifest.variants] == ["fp32"]
    assert any("no training inputs (x_calibration)" in note for note in result.notes)


def test_variant_lists_are_checked() -> None:
    assert parse_variants("int8,distilled") == ("fp32", "int8", "distilled")
    with pytest.raises(UsageError, match="unknown tiny; known: fp32, "):
        parse_variants("fp32,tiny")
    with pytest.raises(UsageError, match="names a variant twice"):
        parse_variants("int8,int8")
    assert compress_options("64,32").distill.hidden == (64, 32)
    with pytest.raises(UsageError, match="--student-hidden"):
        compress_options("0")


def test_cli_builds_the_variants_asked_for_and_shows_them_side_by_side(
    inputs: Inputs, keys: Keys, tmp_path: Path, cli: Cli
) -> None:
    args = [
        "package", inputs.edge, "--data", inputs.data, "--out", tmp_path / "pkg",
        "--name", "digits", "--version", "1", "--sign-key", keys.private,
        "--latency-runs", "2",
    ]  # fmt: skip
    code, out, err = cli(*args, "--variants", "fp32,tiny")
    assert code == EXIT_BAD_INPUT
    assert "--variants: unknown tiny" in err
    spec = tmp_path / "spec.yaml"
    sensor = {"compute": "1GFLOP/s", "memory": "12KB", "profile": {"latency_per_mac": "5ns"}}
    spec.write_text(yaml.safe_dump(varied(MINIMAL, tiers__device_classes={"sensor": sensor})))
    code, out, _ = cli(*args, "--variants", "fp32,pruned-int8", "--profiles", spec)
    assert code == 0, out
    assert [v.name for v in read_manifest(tmp_path / "pkg").variants] == ["fp32", "pruned-int8"]
    # fp32 (64-64-10, ~20 KB) does not fit the 12 KB sensor; pruned-int8 (64-32-10) does
    *_, fp32_row = [line for line in out.splitlines() if line.startswith("│ fp32 ")]
    assert "> 12.0KB" in fp32_row  # the last table: variants on the spec's hardware
    [pick] = [line for line in out.splitlines() if "most accurate that fits" in line]
    assert "pruned-int8" in pick
