"""From a finished run to the fleet: a signed package, uploaded, rolled out in stages.

1. `package_result`: the final global model -> ONNX -> `tierwise.package.build_package`,
   evaluated and calibrated on the operator's validation rows, signed with the operator's
   key, versioned one above the newest package of that name in the packages directory.
2. `upload_package` / `start_rollout`: the continuum's cloud API (`POST /v1/packages` with
   the package as tar.gz, then `POST /v1/rollouts` naming the canary sites) through the
   operator's client, `tierwise.cloud.client.CloudAdmin`, with the admin token. The cloud
   verifies the signature and refuses an old version (`VerificationError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from tierwise.cloud.client import CloudAdmin
from tierwise.errors import UsageError
from tierwise.federate.export import next_version, to_onnx
from tierwise.federate.runner import VALIDATION_FILE, RunResult
from tierwise.wire import RolloutRequest, RolloutThresholds


@dataclass(frozen=True)
class Published:
    """A package built from a run (and, when a cloud was given, its rollout)."""

    name: str
    version: int
    path: Path
    accuracy: float  # of the fp32 variant, on the operator's validation rows
    rollout: dict[str, Any] | None = None


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


def upload_package(cloud_url: str, admin_token: str, package_dir: Path) -> dict[str, Any]:
    """POST the package to the registry; a refusal (signature, version...) says why."""
    info = CloudAdmin(cloud_url, admin_token).upload_package(package_dir)
    return info.model_dump(mode="json")


def start_rollout(
    cloud_url: str,
    admin_token: str,
    name: str,
    version: int,
    canary_sites: list[str],
    *,
    min_accuracy: float | None = None,
    bake_seconds: float = 60.0,
    min_canary_requests: int = 100,
) -> dict[str, Any]:
    """Start a staged rollout: the canaries get `version` now, the rest once they bake."""
    try:
        request = RolloutRequest(
            package=name,
            version=version,
            canary_sites=canary_sites,
            thresholds=RolloutThresholds(min_accuracy=min_accuracy),
            bake_seconds=bake_seconds,
            min_canary_requests=min_canary_requests,
        )
    except ValidationError as exc:
        raise UsageError(f"cannot roll out {name} v{version}: {exc}") from None
    return CloudAdmin(cloud_url, admin_token).start_rollout(request).model_dump(mode="json")
