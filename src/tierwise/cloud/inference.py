"""Cloud inference: `/v1/infer/{feature}` answers with the feature's larger, cloud-side model.

Which package answers a feature is set by the operator (`PUT /v1/cloud-models/{feature}`).
A package is unpacked once into the data directory (content-addressed, so two versions
never share files) and loaded once into a small LRU cache of ONNX Runtime sessions.
Inference is CPU work: the endpoint is a plain `def`, so FastAPI runs it in its thread
pool and the event loop keeps accepting telemetry meanwhile.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends

from tierwise.cloud.auth import AnyCaller
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.deployments import cloud_model_of
from tierwise.cloud.model_cache import Predictor
from tierwise.cloud.params import FeaturePath
from tierwise.cloud.registry import archive_of, unpacked_package
from tierwise.errors import UnprocessableError, UsageError
from tierwise.wire import InferRequest, InferResponse

ROOT_MARKER = ".root"  # inside an unpacked package: the package root's relative path

router = APIRouter(tags=["inference"])
Context = Annotated[CloudContext, Depends(get_context)]


def load_predictor(ctx: CloudContext, package: str, version: int) -> Predictor:
    """Unpack (once) a registered package and load its most accurate variant.

    The registry verified the package on upload; the runtime still hashes the model file
    against the manifest as it loads it.
    """
    from tierwise.package.manifest import read_manifest
    from tierwise.package.runtime import load_model

    _archive, sha256 = archive_of(ctx.db, ctx.settings.package_dir, package, version)
    root = _unpacked_once(ctx, package, version, ctx.settings.data_dir / "models" / sha256)
    manifest = read_manifest(root)
    # The cloud runs "the larger model": the most accurate variant, the largest on a tie.
    best = max(manifest.variants, key=lambda v: (v.accuracy, v.size_bytes))
    return load_model(root, variant=best.name)


def _unpacked_once(ctx: CloudContext, package: str, version: int, target: Path) -> Path:
    """The package root under `target`, unpacking it first if no one has.

    Replicas sharing a data directory may unpack the same package at the same moment, so
    each unpacks into a private staging directory and renames it into place; the rename is
    atomic and fails when another got there first, whose copy holds the same bytes (the
    directory is named by the archive's hash). A `target` without its `.root` marker was
    left by an unpack that an older tierwise did in place and that was interrupted.
    """
    marker = target / ROOT_MARKER
    if target.exists() and not marker.exists():
        legacy = target.with_name(f"{target.name}.root")  # where an older tierwise kept it
        if legacy.exists():
            return target / legacy.read_text().strip()
        _remove_aside(target)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            root = unpacked_package(ctx.db, ctx.settings.package_dir, package, version, staging)
            (staging / ROOT_MARKER).write_text(root.relative_to(staging).as_posix())
            with contextlib.suppress(OSError):  # lost the race: the winner's copy is identical
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target / marker.read_text().strip()


def _remove_aside(path: Path) -> None:
    """Delete a directory that another process might be deleting too: rename first (only one
    rename succeeds), then remove the renamed copy."""
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.stale")
    try:
        path.rename(aside)
    except OSError:
        return  # someone else moved it
    shutil.rmtree(aside, ignore_errors=True)


def infer(ctx: CloudContext, feature: str, request: InferRequest) -> InferResponse:
    """Run the feature's cloud model on a batch of rows."""
    package, version = cloud_model_of(ctx.db, feature)
    model = ctx.models.get((package, version), lambda: load_predictor(ctx, package, version))
    widths = {len(row) for row in request.inputs}
    if len(widths) != 1:
        raise UnprocessableError("inputs: every row must have the same length")
    width = widths.pop()
    if width != model.input_width:
        raise UnprocessableError(
            f"inputs: rows have {width} values, {package} v{version} expects {model.input_width}"
        )
    with np.errstate(over="ignore"):  # beyond float32 becomes inf: refused below as 422
        rows = np.asarray(request.inputs, dtype=np.float32)
    started = time.perf_counter()
    try:
        outputs = model.predict(rows)
    except UsageError as exc:  # inputs the model refuses (infinite in float32): the caller's
        raise UnprocessableError(f"inputs do not fit {package} v{version}: {exc}") from None
    ctx.metrics.inference_seconds.labels(feature).observe(time.perf_counter() - started)
    ctx.metrics.inference_rows.labels(feature).inc(len(request.inputs))
    return InferResponse(
        outputs=np.asarray(outputs, dtype=np.float64).reshape(len(rows), -1).tolist(),
        model=package,
        version=version,
    )


@router.post(
    "/v1/infer/{feature}",
    summary="Answer a batch of inputs with the feature's cloud model",
    responses={401: {}, 404: {}, 413: {}, 422: {}},
)
def post_infer(
    feature: FeaturePath, body: InferRequest, ctx: Context, _caller: AnyCaller
) -> InferResponse:
    return infer(ctx, feature, body)
