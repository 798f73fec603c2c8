"""The federated model, out: an ONNX graph, then a signed package with a newer version.

The global MLP becomes Gemm -> Relu -> Gemm -> Softmax with one float32 input
[N, features] and a `probabilities` output [N, classes], the shape `tierwise.package`
expects. The package is built from it with the operator's validation rows (never any
site's data) and signed; its version is one more than the newest package of the same
name already in the packages directory, so edge agents accept it as an upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tierwise.errors import MissingDependencyError
from tierwise.federate import mlp

ONNX_OPSET = 17
INPUT = "input"
OUTPUT = "probabilities"


def to_onnx(params: mlp.Params, classes: Sequence[int | str]) -> bytes:
    """The MLP as an fp32 ONNX graph (checked by onnx's own checker)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise MissingDependencyError("exporting the federated model", "package") from None
    w1, b1, w2, b2 = (p.astype(np.float32) for p in params)
    weights = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", [INPUT, "w1", "b1"], ["hidden_pre"]),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"]),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [OUTPUT], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tierwise_federated_mlp",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [None, w1.shape[0]])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [None, w2.shape[1]])],
        initializer=weights,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="tierwise federate",
    )
    model.ir_version = 8  # readable by every onnxruntime the edge extra allows
    entry = model.metadata_props.add()
    entry.key, entry.value = "classes", json.dumps(classes)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def next_version(packages_dir: Path, name: str) -> int:
    """One more than the newest version of `name` found under `packages_dir` (else 1)."""
    newest = 0
    for manifest in packages_dir.glob("*/manifest.json"):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("name") == name and isinstance(data.get("version"), int):
            newest = max(newest, int(data["version"]))
    return newest + 1
