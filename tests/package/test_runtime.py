"""Running a package: answers match the trained model, inputs are checked, imports stay light."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tierwise.errors import UsageError, VerificationError
from tierwise.package.manifest import read_manifest
from tierwise.package.runtime import load_model, load_variant, load_verified

from .support import Keys, digits, train


def test_fp32_answers_like_the_scikit_learn_model(built: Path, keys: Keys) -> None:
    _, _, x, _ = digits()
    model = load_verified(built, [keys.public], "fp32")
    prediction = model.predict(x)
    expected = train("mlp").predict_proba(x)
    assert prediction.probabilities.shape == (len(x), 10)
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-4)
    np.testing.assert_array_equal(prediction.confidence, prediction.probabilities.max(axis=1))
    np.testing.assert_array_equal(prediction.labels, expected.argmax(axis=1))


def test_int8_is_the_default_and_agrees_with_fp32(built: Path, keys: Keys) -> None:
    _, _, x, _ = digits()
    small = load_verified(built, [keys.public])
    assert small.variant.name == "int8"
    full = load_verified(built, [keys.public], "fp32")
    agree = np.mean(small.predict(x).labels == full.predict(x).labels)
    assert agree > 0.97
    assert np.allclose(small.predict(x).probabilities.sum(axis=1), 1.0, atol=1e-4)


def test_one_vector_or_a_batch(built: Path, keys: Keys) -> None:
    _, _, x, _ = digits()
    model = load_verified(built, [keys.public])
    one = model.predict(x[0])
    assert one.probabilities.shape == (1, 10)
    assert model.predict(x[:0]).labels.shape == (0,)
    assert model.input_width == 64
    assert np.asarray(model.predict(x[:3])).shape == (3, 10)  # as an array: probabilities


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        (np.zeros((2, 63)), r"expected inputs of shape \[N, 64\], got \[2, 63\]"),
        (np.full((1, 64), np.nan), "NaN or infinity"),
        ([["a"] * 64], "not numeric"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(
    built: Path, keys: Keys, rows: object, reason: str
) -> None:
    model = load_verified(built, [keys.public])
    with pytest.raises(UsageError, match=reason):
        model.predict(rows)


def test_an_unknown_variant_is_named(built: Path, keys: Keys) -> None:
    with pytest.raises(UsageError, match='no variant "int4"; it has fp32, int8'):
        load_verified(built, [keys.public], "int4")


def test_a_file_changed_after_verification_is_not_loaded(package: Path, keys: Keys) -> None:
    from tierwise.package.verify import verify_package

    manifest = verify_package(package, [keys.public])
    (package / "model-int8.onnx").write_bytes((package / "model-fp32.onnx").read_bytes())
    with pytest.raises(VerificationError, match="changed since the package was verified"):
        load_variant(package, manifest, "int8")


def test_load_model_reads_an_already_verified_package(built: Path) -> None:
    model = load_model(built)
    assert (model.name, model.version, model.variant.name) == ("digits", 1, "int8")


def test_a_package_copied_elsewhere_verifies_and_runs_the_same(
    built: Path, keys: Keys, tmp_path: Path
) -> None:
    _, _, x, _ = digits()
    moved = Path(shutil.copytree(built, tmp_path / "somewhere" / "else" / "pkg"))
    original = load_verified(built, [keys.public]).predict(x)
    copied = load_verified(moved, [keys.public]).predict(x)
    np.testing.assert_array_equal(original.probabilities, copied.probabilities)
    text = (moved / "manifest.json").read_text()
    assert str(built.parent) not in text
    assert str(Path.home()) not in text
    assert all(not Path(f).is_absolute() for f in read_manifest(moved).files)


EDGE_MODULES = [
    "manifest",
    "keys",
    "signing",
    "verify",
    "install",
    "runtime",
    "measure",
    "calibrate",
]
BUILD_ONLY = ["sklearn", "skl2onnx", "torch", "onnx", "joblib", "scipy"]


def test_the_edge_side_imports_no_build_dependencies(built: Path, keys: Keys) -> None:
    """Load, verify and run a package with only onnxruntime, numpy, cryptography, pydantic."""
    code = "\n".join(
        [
            "import sys",
            *[f"import tierwise.package.{m}" for m in EDGE_MODULES],
            "from tierwise.package.runtime import load_verified",
            f"m = load_verified({str(built)!r}, [{str(keys.public)!r}])",
            "m.predict([[0.0] * 64])",
            f"heavy = sorted(n for n in {BUILD_ONLY!r} if n in sys.modules)",
            "print(','.join(heavy))",
        ]
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""
