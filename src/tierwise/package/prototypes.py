"""Fit the prototypes rule (rules/routers/prototypes.py) and export it as one ONNX graph.

Fitting: standardize the labelled training inputs (per-feature mean and standard deviation,
floored), then per class k-means (scikit-learn, one seeded start) with PER_CLASS prototypes,
fewer for a class with fewer rows (its last prototype repeated to fill the [classes, K]
grid, which changes no minimum). tau is the median over those rows of the squared distance
to the nearest prototype of any class.

The graph takes the edge model's class probabilities [N, classes] and the input rows
[N, features] and returns the score [N]: standardized squared distances to every prototype
(folded into one MatMul and Add, see `export_prototypes`), per-class nearest over [N,
classes, K], the softmax, the entry of the edge's top class (ArgMax, GatherElements) times
its top probability — one ONNX Runtime call per request, float32 throughout.

Build side: scikit-learn and onnx are imported inside functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.rules.routers.prototypes import PrototypeSet, class_distances, prototype_scores

# Prototypes per class: on digits (five folds, raw inputs) 0.81x the oracle escalation rate at
# 40, 1.17x at 20; a few hundred prototypes in all keep the edge's MatMul small.
PER_CLASS = 40
SEED = 0
CROSS_FOLDS = 5
# A feature's std is floored at this share of the median feature's: a digits border pixel,
# inked in a few images, would otherwise dominate every distance (digits 0.71x the oracle
# rate with 0.1, 0.83x with 0.001; docs/package.md).
MIN_SCALE = 0.1
PROBABILITIES = "probabilities"  # the graph's inputs and output
INPUTS = "inputs"
SCORE = "score"


def fit_prototypes(
    inputs: NDArray[Any], columns: NDArray[np.intp], classes: int, per_class: int = PER_CLASS
) -> PrototypeSet:
    """Prototypes of each class's rows (`columns`: each row's class column, all in range)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    x = np.asarray(inputs, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    floor = max(float(np.median(std)) * MIN_SCALE, 1e-12)
    scale = np.maximum(std, floor)
    z = (x - mean) / scale
    counts = np.bincount(columns, minlength=classes)
    if (counts == 0).any():
        missing = ", ".join(str(c) for c in np.flatnonzero(counts == 0))
        raise ValueError(f"no training rows of class column(s) {missing}")
    k = int(min(per_class, counts.max()))
    centres = np.empty((classes, k, x.shape[1]))
    with threadpool_limits(1):  # a small fit: BLAS threads only contend on a busy machine
        for c in range(classes):
            rows = z[columns == c]
            fitted = min(k, len(rows))
            if fitted == len(rows):
                found = rows
            else:
                found = KMeans(fitted, n_init=1, random_state=SEED).fit(rows).cluster_centers_
            centres[c, :fitted] = found
            centres[c, fitted:] = found[-1]  # a repeated prototype leaves every minimum as is
    fit = PrototypeSet(
        centres.astype(np.float32), mean.astype(np.float32), scale.astype(np.float32), 1.0
    )
    tau = float(np.median(class_distances(fit, x).min(axis=1)))
    return PrototypeSet(fit.centres, fit.mean, fit.scale, max(tau, 1e-6))


Part = tuple[NDArray[np.intp], PrototypeSet]  # rows, and the fit that never saw them


def cross_fits(
    inputs: NDArray[Any], columns: NDArray[np.intp], classes: int, whole: PrototypeSet | None = None
) -> list[Part]:
    """The rows cut in folds, each with prototypes fitted on the other folds. They depend on
    the rows and labels only, so one build fits them once for all its variants.
    `whole`: the fit on every row, if the caller has it already (rare classes use it)."""
    from sklearn.model_selection import StratifiedKFold

    parts: list[Part] = []
    # A class with fewer rows than folds is kept whole in every training part.
    rare = np.flatnonzero(np.bincount(columns, minlength=classes)[columns] < CROSS_FOLDS)
    common = np.setdiff1d(np.arange(len(columns)), rare)
    if len(common):
        splitter = StratifiedKFold(CROSS_FOLDS, shuffle=True, random_state=SEED)
        for used, held in splitter.split(common, columns[common]):
            train = np.concatenate([common[used], rare])
            parts.append((common[held], fit_prototypes(inputs[train], columns[train], classes)))
    if len(rare):  # too few to hold out: scored by the fit on every row (a few, optimistic)
        parts.append(
            (rare, whole if whole is not None else fit_prototypes(inputs, columns, classes))
        )
    return parts


def cross_fitted_scores(
    probabilities: NDArray[Any],
    inputs: NDArray[Any],
    columns: NDArray[np.intp],
    classes: int,
    parts: list[Part] | None = None,
) -> NDArray[np.float64]:
    """Each row's score from prototypes fitted on the other folds (its own would make it look
    falsely sure): honest evidence for choosing the package's best rule on the router rows.
    `parts`: `cross_fits` of these rows, if the caller has them already."""
    out = np.empty(len(columns))
    for scored, fit in parts if parts is not None else cross_fits(inputs, columns, classes):
        out[scored] = prototype_scores(fit, probabilities[scored], inputs[scored])
    return out


def export_prototypes(prototypes: PrototypeSet) -> bytes:
    """The rule as one ONNX graph: (PROBABILITIES [N, classes], INPUTS [N, features]) -> SCORE
    [N], float32 (tests/package/test_prototypes.py compares it with `prototype_scores`).

    Folded to what the score depends on, so a request pays one small MatMul and few nodes:
    the softmax is unchanged by a constant per row, so the row's |z|^2 and its min distance
    drop out, and -(|c|^2 - 2 z.c) / tau with z = (x - mean) / scale is x @ W + b."""
    from onnx import TensorProto, helper, numpy_helper

    from tierwise.package.export import ONNX_OPSET

    classes, k, features = prototypes.centres.shape
    centres = prototypes.centres.reshape(classes * k, features).astype(np.float64)
    inverse_scale = 1.0 / prototypes.scale.astype(np.float64)
    mean = prototypes.mean.astype(np.float64)
    # logit_k = -(|c_k|^2 - 2 z.c_k) / tau, z = (x - mean) * inverse_scale
    weights = (2.0 / prototypes.tau) * (inverse_scale[:, None] * centres.T)  # [features, C*K]
    bias = -((centres * centres).sum(axis=1) + 2.0 * (mean * inverse_scale) @ centres.T)
    bias /= prototypes.tau

    def const(name: str, value: Any, dtype: Any) -> Any:
        array = np.asarray(value, dtype)
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> Any:
        return helper.make_node(op, inputs, [output], **attributes)

    nodes = [
        const("weights", weights, np.float32),
        const("bias", bias, np.float32),
        const("grid", [0, classes, k], np.int64),  # 0: keep N (Reshape's allowzero=0)
        const("row_axis", [1], np.int64),
        # per prototype: minus its squared distance over tau, up to a constant per row
        node("MatMul", [INPUTS, "weights"], "projected"),
        node("Add", ["projected", "bias"], "logits"),
        # per class its nearest prototype, then how much the neighbourhood agrees with each
        node("Reshape", ["logits", "grid"], "by_class"),
        node("ReduceMax", ["by_class"], "class_logits", axes=[2], keepdims=0),
        node("Softmax", ["class_logits"], "agreement", axis=1),
        # the agreement with the edge's answer, times the edge's top probability
        node("ArgMax", [PROBABILITIES], "top", axis=1, keepdims=1),
        node("GatherElements", ["agreement", "top"], "top_agreement", axis=1),
        node("ReduceMax", [PROBABILITIES], "top_probability", axes=[1], keepdims=1),
        node("Mul", ["top_probability", "top_agreement"], "product"),
        node("Squeeze", ["product", "row_axis"], SCORE),
    ]
    graph = helper.make_graph(
        nodes,
        "prototypes_rule",
        [
            helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["N", classes]),
            helper.make_tensor_value_info(INPUTS, TensorProto.FLOAT, ["N", features]),
        ],
        [helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, ["N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 8  # what ONNX Runtime builds of opset 17 all read
    return bytes(model.SerializeToString())
