"""A retrained model becomes a signed package, a newer version of the one it replaces.

It goes through `tierwise package` like any model: measured on the operator's evaluation
rows, calibrated, compressed, signed. One thing differs: its drift yardstick is rebased on
the field (package/drift_reference.py's FieldReference) — the drifted sites' summed feedback
counts in the old version's bins, and the retrained model's confidences on held-out field
rows — because that is the stream it is built for; the evaluation rows' bins would raise
the same alarm again the moment it is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.cloud.client import CloudAdmin
from tierwise.errors import UnprocessableError
from tierwise.federate.export import to_onnx
from tierwise.learn.retrain import Retrained
from tierwise.learn.target import LoopTarget
from tierwise.package.drift_reference import FieldReference
from tierwise.package.measure import DEFAULT_RUNS


@dataclass(frozen=True)
class Published:
    package: str
    version: int
    path: Path
    accuracy: float  # of the full-precision variant on the operator's evaluation rows


def field_reference(feedback: list[dict[str, Any]], confidence: list[int]) -> FieldReference:
    """Sum the sites' feedback counts (one package version's bins) into a yardstick."""
    first = feedback[0]
    same = [f for f in feedback if f["edges"] == first["edges"]]
    if len(same) != len(feedback):
        raise UnprocessableError(
            f"{first['feature']}: the drifted sites run versions with other drift bins; "
            "retrain them one version at a time"
        )
    columns = zip(*(f["inputs"] for f in same), strict=True)  # per column, each site's counts
    return FieldReference(
        edges=first["edges"],
        counts=[[int(c) for c in np.sum(column, axis=0)] for column in columns],
        confidence=confidence,
    )


def published_path(packages_dir: Path, package: str, version: int) -> Path:
    """Where `publish` builds a package version (benchmarks/learning_loop.py reads it back)."""
    return packages_dir / f"{package}-v{version}"


def publish(
    target: LoopTarget,
    retrained: Retrained,
    reference: FieldReference,
    admin: CloudAdmin,
    packages_dir: Path,
    sign_key: Path,
    latency_runs: int = DEFAULT_RUNS,
    progress: Callable[[str], None] = lambda _: None,
) -> Published:
    """Build, sign and upload the retrained model as the next version of the target's package."""
    from tierwise.package.build import BuildOptions, build_package
    from tierwise.package.evaldata import load_eval_data

    version = admin.newest_version(target.package) + 1
    out = published_path(packages_dir, target.package, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx_path = out.parent / f"{out.name}.onnx"  # beside the package it becomes
    onnx_path.write_bytes(to_onnx(retrained.params, list(target.classes)))
    options = BuildOptions(
        name=target.package,
        version=version,
        sign_key=sign_key,
        latency_runs=latency_runs,
        field_reference=reference,
    )
    data = load_eval_data(target.eval_data)
    built = build_package(onnx_path, data, out, options, progress)
    admin.upload_package(built.path)
    fp32 = max(built.manifest.variants, key=lambda v: v.size_bytes)
    return Published(target.package, version, built.path, float(fp32.accuracy))
