"""How the model travels: all parameters as one float32 vector in one Flower ArrayRecord.

One array instead of four means fewer objects per message - and in Flower's Deployment
Engine every object is its own HTTP request on every hop (cloud -> SuperLink -> SuperNode
-> ClientApp and back). Flower's aggregators work coordinate-wise (mean, trimmed mean,
median) or on whole-update distances (Krum, DP clipping), so a single vector aggregates
exactly as the separate layers would. The layer sizes ride along in the round's config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord
from flwr.app.typing import ConfigRecordValues

from tierwise.federate import mlp

WEIGHTS = "weights"
SHAPE_KEYS = ("features", "hidden", "classes")


def to_record(params: mlp.Params) -> ArrayRecord:
    return ArrayRecord({WEIGHTS: Array(mlp.flatten(params))})


def from_record(record: ArrayRecord, shape: mlp.MlpShape) -> mlp.Params:
    return mlp.unflatten(record[WEIGHTS].numpy(), shape)


def shape_config(shape: mlp.MlpShape) -> dict[str, ConfigRecordValues]:
    return {"features": shape.features, "hidden": shape.hidden, "classes": shape.classes}


def shape_from_config(config: Mapping[str, Any]) -> mlp.MlpShape:
    features, hidden, classes = (int(config[k]) for k in SHAPE_KEYS)
    return mlp.MlpShape(features=features, hidden=hidden, classes=classes)


def vector(record: ArrayRecord) -> np.ndarray[Any, np.dtype[np.float32]]:
    return record[WEIGHTS].numpy().astype(np.float32)
