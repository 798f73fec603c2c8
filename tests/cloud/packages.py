"""Real signed packages for registry, rollout and inference tests.

A logistic regression on scikit-learn's bundled wine data (13 features, 3 classes),
exported with skl2onnx and signed with a fresh Ed25519 key: small enough to build in
well under a second, real enough that ONNX Runtime loads and runs it.
"""

from __future__ import annotations

import hashlib
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from tests.package.support import Keys

FEATURES = 13


@cache
def wine() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine

    data = load_wine()
    x = data.data.astype(np.float32)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, data.target


@cache
def trained(max_iter: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    x, y = wine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few iterations on purpose: a weaker model
        return LogisticRegression(max_iter=max_iter).fit(x, y)


@cache
def onnx_bytes(max_iter: int) -> bytes:
    from skl2onnx import to_onnx

    model = trained(max_iter)
    x, _y = wine()
    onx = to_onnx(model, x[:1], options={id(model): {"zipmap": False}}, target_opset=17)
    return bytes(onx.SerializeToString())


@cache
def drift(max_iter: int) -> Any:
    """The package's drift reference: the wine rows binned, the model's probabilities on them."""
    from tierwise.package.drift_reference import drift_reference

    x, _y = wine()
    return drift_reference(x, {"fp32": trained(max_iter).predict_proba(x)})


def build(
    out: Path, signer: Keys, name: str, version: int, max_iter: int = 200, variant: str = "fp32"
) -> Path:
    """A signed package directory holding one variant (fp32 unless named otherwise)."""
    from tierwise.package.keys import load_private_key
    from tierwise.package.manifest import MANIFEST_NAME, Manifest, manifest_bytes
    from tierwise.package.signing import sign_package

    out.mkdir(parents=True, exist_ok=True)
    blob = onnx_bytes(max_iter)
    digest = hashlib.sha256(blob).hexdigest()
    (out / "model-fp32.onnx").write_bytes(blob)
    manifest = Manifest(
        name=name,
        version=version,
        files={"model-fp32.onnx": digest},
        input={"name": "X", "features": FEATURES},
        output={"probabilities": "probabilities", "classes": [0, 1, 2]},
        variants=[
            {
                "name": variant,
                "file": "model-fp32.onnx",
                "size_bytes": len(blob),
                "accuracy": 0.97,
                "quantization": "none",
            }
        ],
        drift=drift(max_iter).model_copy(
            update={"confidence": {variant: drift(max_iter).confidence["fp32"]}}
        ),
        build={
            "tool": "tests/cloud/packages.py",
            "source_kind": "sklearn",
            "source_sha256": digest,
            "eval_data": "wine",
            "eval_samples": 178,
            "calibration_samples": 0,
        },
    )
    (out / MANIFEST_NAME).write_bytes(manifest_bytes(manifest))
    sign_package(out, load_private_key(signer.private))
    return out
