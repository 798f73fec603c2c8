"""A fitted scikit-learn MLP as the federated model's parameters, so a fine-tune starts from it.

The scenarios' edge models are `Pipeline(StandardScaler, MLPClassifier)` with one ReLU
hidden layer. Standardizing is affine, so it folds into the first layer:

    relu(((x - mean) / scale) @ W1 + b1) = relu(x @ W1' + b1'),
    W1' = W1 / scale[:, None],  b1' = b1 - (mean / scale) @ W1

and the result is `mlp.Params` [W1', b1, W2, b2] with the same predictions (up to float32
rounding). A two-class MLPClassifier has one logistic output unit p = sigmoid(z); since
sigmoid(z) = softmax([0, z])[1], it becomes two softmax outputs with a zero first column.
Class i of the result is the model's `classes_[i]` (sorted, as scikit-learn keeps them).

Only attributes are read (scikit-learn itself is not imported); anything else — another
step, more hidden layers, another activation, a multi-label model — is refused, naming the
part and why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import UsageError
from tierwise.federate import mlp

Floats = NDArray[np.float64]


class UnsupportedModelError(UsageError):
    """The model cannot become mlp.Params; the message names the part and why."""


def params_from_sklearn(model: Any) -> mlp.Params:
    """[W1, b1, W2, b2] predicting as `model.predict_proba` does (float32)."""
    steps = getattr(model, "steps", None)
    if steps is None:
        scaler, clf = None, model
    elif len(steps) == 2:
        scaler, clf = steps[0][1], steps[1][1]
    elif len(steps) == 1:
        scaler, clf = None, steps[0][1]
    else:
        names = ", ".join(f"{name} ({type(step).__name__})" for name, step in steps)
        raise UnsupportedModelError(
            f"the pipeline has {len(steps)} steps ({names}); only "
            "[StandardScaler,] MLPClassifier folds into one MLP"
        )
    w1, b1, w2, b2 = _mlp_layers(clf)
    mean, scale = _standardizer(scaler, w1.shape[0])
    folded_w1 = w1 / scale[:, None]
    folded_b1 = b1 - (mean / scale) @ w1
    return [np.asarray(p, dtype=np.float32) for p in (folded_w1, folded_b1, w2, b2)]


def _mlp_layers(clf: Any) -> tuple[Floats, Floats, Floats, Floats]:
    kind = type(clf).__name__
    if kind != "MLPClassifier":
        raise UnsupportedModelError(f"the final step is a {kind}, not an MLPClassifier")
    coefs = getattr(clf, "coefs_", None)
    if coefs is None:
        raise UnsupportedModelError("the MLPClassifier is not fitted (it has no coefs_)")
    if len(coefs) != 2:
        raise UnsupportedModelError(
            f"the MLPClassifier has {len(coefs) - 1} hidden layers; mlp.Params holds exactly one"
        )
    if clf.activation != "relu":
        raise UnsupportedModelError(
            f"the MLPClassifier's hidden activation is {clf.activation!r}; mlp.Params uses relu"
        )
    (w1, w2), (b1, b2) = coefs, clf.intercepts_
    w1, b1 = np.asarray(w1, np.float64), np.asarray(b1, np.float64)
    w2, b2 = np.asarray(w2, np.float64), np.asarray(b2, np.float64)
    if clf.out_activation_ == "softmax":
        return w1, b1, w2, b2
    if clf.out_activation_ == "logistic" and w2.shape[1] == 1 and len(clf.classes_) == 2:
        # sigmoid(z) = softmax([0, z])[1]: a zero logit for the first class
        zero = np.zeros((w2.shape[0], 1))
        return w1, b1, np.hstack([zero, w2]), np.concatenate([[0.0], b2])
    raise UnsupportedModelError(
        f"the MLPClassifier's output is {clf.out_activation_!r} over {w2.shape[1]} units "
        "(a multi-label model); mlp.Params needs one class per row, softmax"
    )


def _standardizer(scaler: Any, features: int) -> tuple[Floats, Floats]:
    if scaler is None:
        return np.zeros(features), np.ones(features)
    kind = type(scaler).__name__
    if kind != "StandardScaler":
        raise UnsupportedModelError(
            f"the pipeline's first step is a {kind}; only a StandardScaler folds into the MLP"
        )
    if not hasattr(scaler, "n_features_in_"):
        raise UnsupportedModelError("the StandardScaler is not fitted")
    mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(features)
    scale = scaler.scale_ if scaler.scale_ is not None else np.ones(features)
    return np.asarray(mean, np.float64), np.asarray(scale, np.float64)
