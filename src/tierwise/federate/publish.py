"""From a finished run to a signed package the fleet can run.

`package_result`: the final global model -> ONNX -> `tierwise.package.build_package`,
evaluated and calibrated on the operator's validation rows, signed with the operator's key,
versioned one above the newest package of that name in the packages directory. Uploading it
and rolling it out is the operator client's job (`tierwise.cloud.client.CloudAdmin`), which
`tierwise federate --cloud` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tierwise.errors import UsageError
from tierwise.federate.export import next_version, to_onnx
from tierwise.federate.runner import VALIDATION_FILE, RunResult


@dataclass(frozen=True)
class Published:
    """A package built from a run."""

    name: str
    version: int
    path: Path
    accuracy: float  # of the fp32 variant, on the operator's validation rows


def package_result(
    result: RunResult, name: str, packages_dir: Path, sign_key: Path, version: int | None = None
) -> Published:
    """Build the signed package of the run's final model (version: next after the newest)."""
    from tierwise.package.build import BuildOptions, build_package
    from tierwise.package.evaldata import EvalData

    if not result.ok:
        raise UsageError(f"run {result.run_dir} failed, nothing to package: {result.reason}")
    onnx_path = result.run_dir / "model.onnx"
    onnx_path.write_bytes(to_onnx(result.params(), list(range(result.settings.classes))))
    with np.load(result.run_dir / "cloud" / VALIDATION_FILE) as held:
        data = EvalData(
            x=held["x"].astype(np.float32),
            y=held["y"],
            x_calibration=None,
            source=f"operator validation rows of {result.settings.dataset}",
        )
    version = version if version is not None else next_version(packages_dir, name)
    out = packages_dir / f"{name}-v{version}"
    built = build_package(
        onnx_path, data, out, BuildOptions(name=name, version=version, sign_key=sign_key)
    )
    fp32 = max(built.manifest.variants, key=lambda v: v.size_bytes)
    return Published(name, version, built.path, float(fp32.accuracy))
