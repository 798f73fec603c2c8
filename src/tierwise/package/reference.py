"""The cloud model a cascade escalates to: its answers on the evaluation data, and what it is.

`--cloud-model` may be a scikit-learn estimator (joblib), a PyTorch module, an ONNX file, or a
package directory (its most accurate variant). Python models answer through their own
`predict` (the cloud can run anything, so nothing needs to convert); ONNX files and packages
through ONNX Runtime.

Build side: heavy imports inside functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import UsageError
from tierwise.package.export import export_model, load_sklearn, load_torch, source_kind
from tierwise.package.manifest import MANIFEST_NAME, Reference, read_manifest, sha256_file
from tierwise.package.measure import Scorer


def reference_answers(
    ref: str | Path, x: NDArray[np.float32], y: NDArray[Any]
) -> tuple[NDArray[Any], Reference]:
    """Labels the cloud model gives for `x`, and its description for the manifest."""
    path = Path(ref)
    if path.is_dir():
        return _from_package(path, x, y)
    if not path.is_file():
        raise UsageError(f"{path}: no such cloud model (a model file or a package directory)")
    kind = source_kind(path)
    if kind == "sklearn":
        labels = np.asarray(load_sklearn(path).predict(x))
    elif kind == "torch":
        labels = _torch_labels(path, x, y)
    else:
        exported = export_model(path, x, y)
        scorer = Scorer(exported.onnx, exported.input_name, exported.probabilities)
        labels = np.asarray(exported.classes)[scorer.probabilities(x).argmax(axis=1)]
    return labels, _describe(path, kind, sha256_file(path), path.stat().st_size, labels, y)


def _torch_labels(path: Path, x: NDArray[np.float32], y: NDArray[Any]) -> NDArray[Any]:
    import torch

    module = load_torch(path)
    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(x)))
    classes = np.asarray(getattr(module, "classes", None) or np.unique(y))
    return np.asarray(classes[out.numpy().argmax(axis=1)])


def _from_package(
    path: Path, x: NDArray[np.float32], y: NDArray[Any]
) -> tuple[NDArray[Any], Reference]:
    from tierwise.package.runtime import load_variant

    try:
        manifest = read_manifest(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a package ({MANIFEST_NAME} unreadable: {exc})") from None
    best = max(manifest.variants, key=lambda v: v.accuracy)
    model = load_variant(path, manifest, best.name)
    labels = model.predict(x).labels
    size = (path / best.file).stat().st_size
    digest = manifest.files[best.file]
    return labels, _describe(
        path,
        "package",
        digest,
        size,
        labels,
        y,
        name=f"{manifest.name}-v{manifest.version}:{best.name}",
    )


def _describe(
    path: Path,
    kind: str,
    digest: str,
    size: int,
    labels: NDArray[Any],
    y: NDArray[Any],
    name: str | None = None,
) -> Reference:
    return Reference(
        name=name or path.name,
        kind=kind,
        sha256=digest,
        accuracy=float(np.mean(labels == y)),
        size_bytes=size,
    )


def reference_probabilities(
    ref: str | Path, x: NDArray[np.float32], classes: list[Any]
) -> NDArray[np.float32]:
    """The cloud model's class probabilities for `x`, columns in the order of `classes` (the
    edge model's): the soft targets a distilled student learns (distill.py)."""
    path = Path(ref)
    if path.is_dir():
        from tierwise.package.runtime import load_variant

        manifest = read_manifest(path)
        best = max(manifest.variants, key=lambda v: v.accuracy)
        model = load_variant(path, manifest, best.name)
        own = list(manifest.output.classes)
        return _aligned(model.predict(x).probabilities, own, classes, path)
    kind = source_kind(path)
    if kind == "sklearn":
        estimator = load_sklearn(path)
        p = np.asarray(estimator.predict_proba(x), dtype=np.float32)
        own = [c.item() if hasattr(c, "item") else c for c in estimator.classes_]
        return _aligned(p, own, classes, path)
    exported = export_model(path, x, np.asarray(classes))
    scorer = Scorer(exported.onnx, exported.input_name, exported.probabilities)
    return _aligned(scorer.probabilities(x), exported.classes, classes, path)


def _aligned(
    p: NDArray[np.float32], own: list[Any], wanted: list[Any], path: Path
) -> NDArray[np.float32]:
    missing = [c for c in own if c not in wanted]
    if missing:
        raise UsageError(f"{path}: the cloud model has classes the edge model lacks: {missing}")
    out = np.zeros((len(p), len(wanted)), dtype=np.float32)
    for j, c in enumerate(own):
        out[:, wanted.index(c)] = p[:, j]
    return out
