"""A ReLU multilayer perceptron as plain matrices: read from a trained model, written to ONNX.

Distillation and pruning (distill.py, pruning.py) work on this one form. `DenseNet` holds the
layers as numpy arrays ([inputs, outputs] weights and a bias each), any input standardization
folded into the first layer, so the exported graph is Gemm → Relu → ... → Gemm → Softmax and
nothing else: what a microcontroller runtime (TFLite Micro, CMSIS-NN) also runs as dense
layers. Its multiply-accumulates per row (`macs`) are what a hardware profile scales with.

Readable sources: a scikit-learn `MLPClassifier` with ReLU units, alone or after a
`StandardScaler` in a pipeline, and a PyTorch `nn.Sequential` of `Linear` and `ReLU`. Anything
else has no hidden units to prune (`dense_net` says why).

Build side: onnx and torch are imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.package.export import ONNX_OPSET

INPUT = "input"
OUTPUT = "probabilities"


@dataclass(frozen=True)
class DenseNet:
    """Layers (weights [in, out], bias [out]); ReLU between them, softmax after the last."""

    weights: tuple[NDArray[np.float32], ...]
    biases: tuple[NDArray[np.float32], ...]

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(w.shape[1] for w in self.weights[:-1])

    @property
    def parameters(self) -> int:
        return sum(w.size + b.size for w, b in zip(self.weights, self.biases, strict=True))

    @property
    def macs(self) -> int:
        """Multiply-accumulates per input row."""
        return sum(w.size for w in self.weights)

    @property
    def sparsity(self) -> float:
        """The share of weights (not biases) that are exactly zero."""
        zeros = sum(int((w == 0).sum()) for w in self.weights)
        return zeros / max(1, sum(w.size for w in self.weights))

    def probabilities(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """numpy forward pass (for checks; the package measures the ONNX graph)."""
        h = np.asarray(x, dtype=np.float32)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0)
        h = h - h.max(axis=1, keepdims=True)
        e = np.exp(h)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


def dense_net(model: Any) -> DenseNet | str:
    """The model's layers, or a sentence saying why it has none to work on."""
    scaler = None
    if hasattr(model, "steps"):  # a scikit-learn pipeline
        steps = [s for _, s in model.steps]
        if len(steps) == 2 and type(steps[0]).__name__ == "StandardScaler":
            scaler, model = steps[0], steps[1]
        elif len(steps) == 1:
            model = steps[0]
        else:
            kinds = " → ".join(type(s).__name__ for s in steps)
            return f"a pipeline {kinds}; only StandardScaler → MLPClassifier is read"
    if type(model).__name__ == "MLPClassifier":
        net = _from_sklearn_mlp(model)
    elif _is_torch_sequential(model):
        net = _from_torch_sequential(model)
    else:
        return f"a {type(model).__name__}, which has no hidden units (an MLP is needed)"
    if isinstance(net, str) or scaler is None:
        return net
    mean = np.asarray(scaler.mean_ if scaler.with_mean else 0.0, dtype=np.float64)
    scale = np.asarray(scaler.scale_ if scaler.with_std else 1.0, dtype=np.float64)
    return fold_standardization(net, mean, scale)


def fold_standardization(
    net: DenseNet, mean: NDArray[np.float64], scale: NDArray[np.float64]
) -> DenseNet:
    """The same net on raw inputs: (x - mean) / scale folded into the first layer."""
    w = net.weights[0].astype(np.float64)
    features = w.shape[0]
    mean = np.broadcast_to(mean, (features,))
    scale = np.broadcast_to(np.where(scale == 0, 1.0, scale), (features,))
    folded = w / scale[:, None]
    bias = net.biases[0].astype(np.float64) - mean @ folded
    return DenseNet(
        (folded.astype(np.float32), *net.weights[1:]), (bias.astype(np.float32), *net.biases[1:])
    )


def _from_sklearn_mlp(mlp: Any) -> DenseNet | str:
    if mlp.activation != "relu":
        return f"an MLPClassifier with {mlp.activation} units (only relu is read)"
    weights = [np.asarray(w, dtype=np.float32) for w in mlp.coefs_]
    biases = [np.asarray(b, dtype=np.float32) for b in mlp.intercepts_]
    if weights[-1].shape[1] == 1:  # binary: one logistic output z; softmax([0, z]) is the same
        weights[-1] = np.concatenate([np.zeros_like(weights[-1]), weights[-1]], axis=1)
        biases[-1] = np.concatenate([np.zeros_like(biases[-1]), biases[-1]])
    return DenseNet(tuple(weights), tuple(biases))


def _is_torch_sequential(model: Any) -> bool:
    return type(model).__name__ == "Sequential" and type(model).__module__.startswith("torch")


def _from_torch_sequential(model: Any) -> DenseNet | str:
    layers = list(model)
    kinds = [type(layer).__name__ for layer in layers]
    if kinds and kinds[-1] == "Softmax":
        kinds, layers = kinds[:-1], layers[:-1]
    expected = ["Linear" if i % 2 == 0 else "ReLU" for i in range(len(kinds))]
    if not kinds or kinds != expected or kinds[-1] != "Linear":
        return f"an nn.Sequential of {', '.join(kinds) or 'nothing'} (Linear/ReLU are read)"
    linear = layers[::2]
    return DenseNet(
        tuple(layer.weight.detach().numpy().T.astype(np.float32) for layer in linear),
        tuple(layer.bias.detach().numpy().astype(np.float32) for layer in linear),
    )


def to_torch(net: DenseNet) -> Any:
    """An nn.Sequential of Linear and ReLU with the net's weights (for fine-tuning)."""
    import torch

    modules: list[Any] = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        linear = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if i < len(net.weights) - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


def from_torch(module: Any) -> DenseNet:
    """The weights of a Sequential made by `to_torch` (or trained from one)."""
    net = _from_torch_sequential(module)
    assert not isinstance(net, str), net
    return net


def to_onnx(net: DenseNet, name: str, input_name: str = INPUT, output: str = OUTPUT) -> bytes:
    """The net as an ONNX graph: input [N, features] → probabilities [N, classes], under the
    names the package's other variants use (a manifest has one input and output schema)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []
    current = input_name
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        initializers += [
            numpy_helper.from_array(np.ascontiguousarray(w), f"w{i}"),
            numpy_helper.from_array(np.ascontiguousarray(b), f"b{i}"),
        ]
        out = f"z{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out], name=f"gemm{i}"))
        current = out
        if i < len(net.weights) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            current = f"h{i}"
    nodes.append(helper.make_node("Softmax", [current], [output], axis=1, name="softmax"))
    features, classes = net.weights[0].shape[0], net.weights[-1].shape[1]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", classes])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="tierwise"
    )
    model.ir_version = 8  # what onnxruntime 1.18+ reads (the onnx package may write newer)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def graph_macs(onnx_bytes: bytes) -> int | None:
    """Multiply-accumulates per input row of a graph's matrix products (MatMul and Gemm with a
    constant weight); None when it has none (a tree ensemble, say), as then MACs say nothing
    of its cost."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    total, found = 0, False
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in shapes:
            found = True
            total += int(np.prod(shapes[node.input[1]]))
    return total if found else None
