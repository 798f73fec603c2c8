"""Cloud inference: `/v1/infer/{feature}` answers with the feature's larger, cloud-side model.

Which package answers a feature is set by the operator (`PUT /v1/cloud-models/{feature}`).
A package is unpacked once into the data directory (content-addressed, so two versions
never share files) and loaded once into a small LRU cache of ONNX Runtime sessions.
Inference is CPU work: the endpoint is a plain `def`, so FastAPI runs it in its thread
pool and the event loop keeps accepting telemetry meanwhile.
"""

from __future__ import annotations

import shutil
import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends

from tierwise.cloud.auth import AnyCaller
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.deployments import cloud_model_of
from tierwise.cloud.model_cache import Predictor
from tierwise.cloud.params import FeaturePath
from tierwise.cloud.registry import archive_of, unpacked_package
from tierwise.errors import UnprocessableError
from tierwise.wire import InferRequest, InferResponse

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
    models = ctx.settings.data_dir / "models"
    target = models / sha256
    ready = models / f"{sha256}.root"  # written last: its presence means the unpack finished
    if not ready.exists():
        if target.exists():
            shutil.rmtree(target)  # left over from an unpack that was interrupted
        root = unpacked_package(ctx.db, ctx.settings.package_dir, package, version, target)
        ready.write_text(root.relative_to(target).as_posix())
    root = target / ready.read_text().strip()
    manifest = read_manifest(root)
    # The cloud runs "the larger model": the most accurate variant, the largest on a tie.
    best = max(manifest.variants, key=lambda v: (v.accuracy, v.size_bytes))
    return load_model(root, variant=best.name)


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
    rows = np.asarray(request.inputs, dtype=np.float32)
    started = time.perf_counter()
    outputs = model.predict(rows)
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
