"""Building packages from scikit-learn, ONNX and PyTorch models, and what a build measures."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest

from tierwise.errors import UsageError
from tierwise.package.evaldata import EvalData, save_eval_data
from tierwise.package.manifest import read_manifest
from tierwise.package.quantize import plan_quantization, quantize
from tierwise.package.runtime import load_verified

from .support import Inputs, Keys, build, digits, train

Cli = Callable[..., tuple[int, str, str]]


def test_a_built_package_measures_every_variant(built: Path) -> None:
    manifest = read_manifest(built)
    fp32, int8 = manifest.variant("fp32"), manifest.variant("int8")
    assert (fp32.quantization, int8.quantization) == ("none", "static")
    assert fp32.size_bytes == (built / fp32.file).stat().st_size
    assert int8.size_bytes < 0.5 * fp32.size_bytes
    _, _, x, y = digits()
    assert fp32.accuracy == pytest.approx(float(np.mean(train("mlp").predict(x) == y)))
    assert abs(fp32.accuracy - int8.accuracy) < 0.02
    for variant in (fp32, int8):
        assert [s.batch for s in variant.latency] == [1, 32]
        assert all(0 < s.p50_ms <= s.p99_ms for s in variant.latency)
    assert manifest.build.calibration_samples == 256  # the npz's x_calibration
    assert manifest.metrics["int8_size_ratio"] == pytest.approx(
        int8.size_bytes / fp32.size_bytes, abs=1e-4
    )


def test_the_cascade_curve_joins_edge_and_cloud_answers(built: Path) -> None:
    manifest = read_manifest(built)
    cascade = manifest.cascade
    assert cascade is not None
    _, _, x, y = digits()
    cloud_accuracy = float(np.mean(train("svm").predict(x) == y))
    assert cascade.reference.accuracy == pytest.approx(cloud_accuracy)
    for name, rules in cascade.rules.items():
        assert cascade.best_rule[name] in rules
        assert cascade.oracle_escalated[name] == pytest.approx(1 - manifest.variant(name).accuracy)
        for entry in rules.values():
            curve = entry.curve
            escalated = [p.escalated for p in curve]
            assert escalated == sorted(escalated)
            assert curve[0].accuracy == pytest.approx(manifest.variant(name).accuracy)
            assert curve[-1].accuracy == pytest.approx(cloud_accuracy)


def test_an_onnx_file_is_packaged_as_is(inputs: Inputs, keys: Keys, tmp_path: Path) -> None:
    from skl2onnx import to_onnx

    x, _, _, _ = digits()
    model = train("logistic")
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(to_onnx(model, x[:1], options={"zipmap": False}).SerializeToString())
    result = build(inputs, tmp_path / "pkg", keys, model=onnx_path)
    assert result.manifest.build.source_kind == "onnx"
    _, _, x_eval, y_eval = digits()
    assert result.manifest.variant("fp32").accuracy == pytest.approx(
        float(np.mean(model.predict(x_eval) == y_eval))
    )


def test_an_onnx_model_with_logits_gets_a_softmax(
    inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = train("logistic")
    weights = numpy_helper.from_array(model.coef_.T.astype(np.float32), "w")
    bias = numpy_helper.from_array(model.intercept_.astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["logits"])],
        "logits-only",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 10])],
        initializer=[weights, bias],
    )
    path = tmp_path / "logits.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    result = build(inputs, tmp_path / "pkg", keys, model=path, cloud=False)
    assert result.manifest.output.probabilities == "probabilities"
    _, _, x, _ = digits()
    probs = load_verified(tmp_path / "pkg", [keys.public], "fp32").predict(x).probabilities
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_a_tree_gets_no_int8_variant_and_says_why(
    inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    path = tmp_path / "tree.joblib"
    joblib.dump(train("tree"), path)
    result = build(inputs, tmp_path / "pkg", keys, model=path, cloud=False)
    assert [v.name for v in result.manifest.variants] == ["fp32"]
    assert result.manifest.cascade is None
    assert any("TreeEnsembleClassifier" in note for note in result.notes)


def test_dynamic_quantization_without_calibration_inputs(built: Path) -> None:
    fp32 = (built / "model-fp32.onnx").read_bytes()
    assert plan_quantization(fp32, has_calibration=True) == "static"
    quantized = quantize(fp32, "X", None)
    assert not isinstance(quantized, str)
    assert quantized.mode == "dynamic"
    assert len(quantized.onnx) < 0.5 * len(fp32)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["torchscript", "pickled"])
def test_a_pytorch_module_is_packaged(
    inputs: Inputs, keys: Keys, tmp_path: Path, kind: str
) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y, _, _ = digits()
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        optimizer.step()
    net.eval()
    path = tmp_path / f"net-{kind}.pt"
    if kind == "torchscript":
        torch.jit.save(torch.jit.script(net), str(path))
    else:
        torch.save(net, str(path))
    result = build(inputs, tmp_path / "pkg", keys, model=path)
    manifest = result.manifest
    assert manifest.build.source_kind == "torch"
    assert [v.name for v in manifest.variants] == ["fp32", "int8"]
    _, _, x_eval, y_eval = digits()
    with torch.no_grad():
        expected = float(np.mean(net(torch.from_numpy(x_eval)).argmax(1).numpy() == y_eval))
    assert manifest.variant("fp32").accuracy == pytest.approx(expected)
    assert manifest.variant("int8").accuracy > expected - 0.02


def test_a_package_can_be_the_cloud_reference(
    built: Path, inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    from tierwise.package.build import BuildOptions, build_package
    from tierwise.package.evaldata import load_eval_data

    options = BuildOptions("digits", 1, keys.private, built, latency_runs=5)
    result = build_package(inputs.edge, load_eval_data(inputs.data), tmp_path / "pkg", options)
    assert result.manifest.cascade is not None
    assert result.manifest.cascade.reference.kind == "package"
    assert result.manifest.cascade.reference.name == "digits-v1:fp32"


def test_bad_models_are_refused_with_a_reason(inputs: Inputs, keys: Keys, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    x, y, _, _ = digits()
    regressor = tmp_path / "regressor.joblib"
    joblib.dump(LinearRegression().fit(x, y), regressor)
    with pytest.raises(UsageError, match="needs a fitted classifier with predict_proba"):
        build(inputs, tmp_path / "a", keys, model=regressor)
    weird = tmp_path / "model.h5"
    weird.write_bytes(b"")
    with pytest.raises(UsageError, match=r"unknown model format \.h5"):
        build(inputs, tmp_path / "b", keys, model=weird)
    with pytest.raises(UsageError, match="no such model file"):
        build(inputs, tmp_path / "c", keys, model=tmp_path / "absent.joblib")
    assert not (tmp_path / "a").exists()


def test_an_existing_package_is_not_overwritten(built: Path, inputs: Inputs, keys: Keys) -> None:
    with pytest.raises(UsageError, match="already exists and is not empty"):
        build(inputs, built, keys)


def test_cli_package_prints_progress_and_the_side_by_side(
    inputs: Inputs, keys: Keys, tmp_path: Path, cli: Cli
) -> None:
    out = tmp_path / "pkg"
    code, stdout, stderr = cli(
        "package", inputs.edge, "--data", inputs.data, "--cloud-model", inputs.cloud,
        "--name", "digits", "--version", "3", "--sign-key", keys.private, "--out", out,
        "--latency-runs", "5",
    )  # fmt: skip
    assert code == 0, stderr
    assert "quantizing to INT8" in stderr
    assert "timing fp32, int8 at batch 32" in stderr
    assert "int8" in stdout
    assert "static" in stdout
    assert "oracle would escalate" in stdout
    assert read_manifest(out).version == 3


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--version", "0"], "--version must be 1 or more"),
        (["--data", "nowhere.npz"], "cannot read evaluation data"),
        (["--data", "mnist"], 'unknown scenario "mnist"'),
        (["--sign-key", "/nonexistent.key"], "cannot read the private key"),
    ],
)
def test_cli_package_bad_input_exits_2(
    inputs: Inputs, keys: Keys, tmp_path: Path, cli: Cli, args: list[str], reason: str
) -> None:
    defaults = {"--data": str(inputs.data), "--version": "1", "--sign-key": str(keys.private)}
    defaults.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [item for pair in defaults.items() for item in pair]
    code, _, stderr = cli(
        "package", inputs.edge, *flat, "--name", "d", "--out", tmp_path / "o", "--latency-runs", "2"
    )
    assert code == 2
    assert reason in stderr


def test_eval_data_files_are_checked(tmp_path: Path) -> None:
    from tierwise.package.evaldata import load_eval_data

    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(UsageError, match="missing array 'y'"):
        load_eval_data(bad)
    np.savez(bad, x=np.zeros((3, 4)), y=np.zeros(2))
    with pytest.raises(UsageError, match="one label per row"):
        load_eval_data(bad)
    good = tmp_path / "good.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_eval_data(good, EvalData(np.ones((3, 4), np.float32), np.arange(3), None, "x"))
    loaded = load_eval_data(good)
    assert loaded.x_calibration is None
    assert loaded.source == "good.npz"
