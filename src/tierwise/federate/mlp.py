"""The model sites train together: a one-hidden-layer MLP in plain numpy.

Plain numpy rather than scikit-learn's MLPClassifier because FedProx needs a proximal term
in the local loss (mu/2 * ||w - w_global||^2), and because the parameters must travel as a
fixed list of float32 arrays that every site, the cloud and the ONNX export agree on:
[W1 (features x hidden), b1 (hidden), W2 (hidden x classes), b2 (classes)].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tierwise.rules.drift import confidence_counts

Params = list[NDArray[np.float32]]


@dataclass(frozen=True)
class MlpShape:
    """Layer sizes; the same on every site and in the cloud."""

    features: int
    hidden: int
    classes: int


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    examples: int
    # rows per bin of the top class probability (rules/drift.py's CONFIDENCE_EDGES): how
    # sure the model is, as integers only
    confidence_counts: tuple[int, ...] = ()


def init_params(shape: MlpShape, seed: int) -> Params:
    """He-initialised weights, zero biases: the global model of round 0."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, np.sqrt(2.0 / shape.features), (shape.features, shape.hidden))
    w2 = rng.normal(0.0, np.sqrt(2.0 / shape.hidden), (shape.hidden, shape.classes))
    return [
        w1.astype(np.float32),
        np.zeros(shape.hidden, np.float32),
        w2.astype(np.float32),
        np.zeros(shape.classes, np.float32),
    ]


def save_params(path: Path, params: Params) -> Path:
    """[W1, b1, W2, b2] as an .npz (arr_0 .. arr_3), the form every run file uses."""
    np.savez(path, *params)
    return path


def load_params(path: Path) -> Params:
    with np.load(path) as data:
        return [data[f"arr_{i}"].astype(np.float32) for i in range(len(data.files))]


def segment_sizes(shape: MlpShape) -> list[int]:
    """Lengths of W1, b1, W2, b2 in the flat parameter vector."""
    return [
        shape.features * shape.hidden,
        shape.hidden,
        shape.hidden * shape.classes,
        shape.classes,
    ]


def flatten(params: Params) -> NDArray[np.float32]:
    """All parameters as one float32 vector (the order of `segment_sizes`)."""
    return np.concatenate([p.astype(np.float32).ravel() for p in params])


def unflatten(vector: NDArray[np.floating], shape: MlpShape) -> Params:
    sizes = segment_sizes(shape)
    if vector.size != sum(sizes):
        raise ValueError(f"expected {sum(sizes)} parameters for {shape}, got {vector.size}")
    shapes = [
        (shape.features, shape.hidden),
        (shape.hidden,),
        (shape.hidden, shape.classes),
        (shape.classes,),
    ]
    out, start = [], 0
    for size, dims in zip(sizes, shapes, strict=True):
        out.append(vector[start : start + size].astype(np.float32).reshape(dims))
        start += size
    return out


def shape_of(params: Params) -> MlpShape:
    w1, _, w2, _ = params
    return MlpShape(features=w1.shape[0], hidden=w1.shape[1], classes=w2.shape[1])


def predict_proba(params: Params, x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Class probabilities, one row per input row."""
    w1, b1, w2, b2 = params
    hidden = np.maximum(x @ w1 + b1, 0.0)
    return _softmax(hidden @ w2 + b2)


def evaluate(params: Params, x: NDArray[np.float32], y: NDArray[np.int64]) -> Evaluation:
    """Mean cross-entropy, accuracy and the confidence histogram on (x, y)."""
    if len(y) == 0:
        return Evaluation(loss=0.0, accuracy=0.0, examples=0)
    proba = predict_proba(params, x)
    picked = np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)
    return Evaluation(
        loss=_mean_cross_entropy(picked),
        accuracy=float(np.mean(np.argmax(proba, axis=1) == y)),
        examples=len(y),
        confidence_counts=tuple(int(c) for c in confidence_counts(proba.max(axis=1))),
    )


def train(
    params: Params,
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    proximal_mu: float = 0.0,
    seed: int = 0,
) -> tuple[Params, float]:
    """Mini-batch SGD from `params`; returns the new params and the mean training loss.

    With `proximal_mu` > 0 the loss gains mu/2 * ||w - params||^2 (FedProx), which keeps a
    site with skewed labels from drifting far from the global model.
    """
    anchor = [p.copy() for p in params]
    w1, b1, w2, b2 = (p.astype(np.float32, copy=True) for p in params)
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    classes = w2.shape[1]
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            xb, yb = x[idx], y[idx]
            pre = xb @ w1 + b1
            hidden = np.maximum(pre, 0.0)
            proba = _softmax(hidden @ w2 + b2)
            picked = np.clip(proba[np.arange(len(yb)), yb], 1e-12, 1.0)
            losses.append(_mean_cross_entropy(picked))
            # gradient of mean cross-entropy through softmax, then back through the ReLU
            dlogits = (proba - np.eye(classes, dtype=np.float32)[yb]) / len(yb)
            gw2 = hidden.T @ dlogits
            gb2 = dlogits.sum(axis=0)
            dhidden = (dlogits @ w2.T) * (pre > 0)
            gw1 = xb.T @ dhidden
            gb1 = dhidden.sum(axis=0)
            grads = [gw1, gb1, gw2, gb2]
            if proximal_mu > 0:
                current = [w1, b1, w2, b2]
                grads = [
                    g + proximal_mu * (w - a)
                    for g, w, a in zip(grads, current, anchor, strict=True)
                ]
            w1 -= learning_rate * grads[0]
            b1 -= learning_rate * grads[1]
            w2 -= learning_rate * grads[2]
            b2 -= learning_rate * grads[3]
    new = [p.astype(np.float32) for p in (w1, b1, w2, b2)]
    return new, float(np.mean(losses)) if losses else 0.0


def _mean_cross_entropy(picked: NDArray[np.floating]) -> float:
    """-mean(log p) of the probabilities given to the true classes, in float64.

    A metric leaves the site (Flower's metric records are 64-bit floats). Computed in
    float32 and widened it would be a float32 value, as every raw input is: an
    auditor searching the WAN for inputs could not tell the two apart, and the loss is more
    exact this way besides."""
    return float(-np.mean(np.log(picked.astype(np.float64))))


def _softmax(logits: NDArray[np.floating]) -> NDArray[np.float32]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    proba: NDArray[np.float32] = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    return proba
