"""Fit every escalation rule (rules/routers) for one edge variant and draw each one's curve.

What the rules learn from: the edge model's outputs on data it was not trained on, with their
labels. Given such *router data* (e.g. out-of-fold predictions on the training split, which
a scenario computes), the temperature and the learned router are fitted on it and every curve
is drawn on the evaluation data, which neither saw. Without it they are cross-fitted on the
evaluation data (two halves, each scored by a model fitted on the other), so the curves are
still drawn on rows their model did not see; the shipped model is then fitted on all of it.

The prototypes rule needs the router rows' inputs too (`RouterData.inputs`): it is fitted on
them (package/prototypes.py), exported to ONNX, and its curve drawn by ONNX Runtime on the
evaluation rows; without router inputs the package has no prototypes rule (said in a note).

The learned router is a scikit-learn logistic regression (its strength chosen by 5-fold
cross-validated log-loss on the router data, not by looking at any test split), exported to
ONNX as one graph from the edge model's class probabilities to its answer (`feature_graph`,
the features in float32, then skl2onnx's graph of the pipeline); its curve is drawn by ONNX
Runtime on the exported bytes, so the curve is the curve of what the edge runs.

Build side: scikit-learn, skl2onnx and scipy are imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.package.calibrate import cascade_curve
from tierwise.package.manifest import RuleCurve
from tierwise.package.runtime import onnx_rule
from tierwise.rules.routers import DEFAULT_RULE, RULE_NAMES, make_rule, router_features
from tierwise.rules.routers.learned import TINY
from tierwise.rules.routers.temperature import fit_temperature

STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # inverse regularization searched by CV
CV_FOLDS = 5
SEED = 0
FILED = ("learned", "prototypes")  # the rules fitted into a model file, not a formula
MIN_WRONG = 4  # fewer wrong answers than this to learn from: no learned rule (said in a note)
PROBABILITIES = "class_probabilities"  # the router graph's input: the edge model's output
FEATURES = "router_features"  # the feature nodes' output, the regression's input


@dataclass(frozen=True)
class RouterData:
    """Edge class probabilities on rows it did not train on, those rows' labels and (for the
    prototypes rule) the rows themselves."""

    probabilities: NDArray[np.float32]
    labels: NDArray[Any]
    inputs: NDArray[np.float32] | None = None
    # The prototypes fitted to these rows (the shipped graph, the cross-fit parts): they do
    # not depend on the variant scoring them, so a build with several fits them once.
    prototype_fits: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class FittedRules:
    rules: dict[str, RuleCurve]
    best: str
    files: dict[str, bytes] = field(default_factory=dict)  # the learned and prototype graphs
    notes: list[str] = field(default_factory=list)


def fit_rules(
    variant: str,
    probabilities: NDArray[np.float32],
    inputs: NDArray[np.float32],
    labels: NDArray[Any],
    classes: list[Any],
    cloud_correct: NDArray[np.bool_],
    router_data: RouterData | None,
) -> FittedRules:
    """Every rule's curve for one variant on the evaluation rows (`probabilities` of `inputs`,
    `labels`)."""
    classes_arr = np.asarray(classes)
    edge_correct = np.asarray(classes_arr[probabilities.argmax(axis=1)] == labels)
    columns = _true_columns(classes_arr, labels)
    notes: list[str] = []
    if router_data is not None:
        fit_p = np.asarray(router_data.probabilities, dtype=np.float64)
        fit_columns = _true_columns(classes_arr, router_data.labels)
    else:
        fit_p, fit_columns = np.asarray(probabilities, dtype=np.float64), columns
    temperature = fit_temperature(fit_p[fit_columns >= 0], fit_columns[fit_columns >= 0])

    closed_form = {n: make_rule(n, temperature=temperature) for n in RULE_NAMES if n not in FILED}
    scores = {name: rule.score(probabilities, inputs) for name, rule in closed_form.items()}
    entries: dict[str, dict[str, Any]] = {name: {} for name in closed_form}
    entries["temperature"] = {"temperature": temperature}

    files: dict[str, bytes] = {}
    learned = _learned_scores(probabilities, edge_correct, fit_p, fit_columns, router_data, notes)
    if learned is not None:
        onnx_bytes, scores["learned"] = learned
        file = f"router-{variant}.onnx"
        files[file] = onnx_bytes
        entries["learned"] = {"file": file}
    prototypes = _prototype_scores(probabilities, inputs, fit_columns, len(classes), router_data)
    if isinstance(prototypes, str):
        notes.append(prototypes)
    else:
        onnx_bytes, scores["prototypes"], router_scores = prototypes
        file = f"prototypes-{variant}.onnx"
        files[file] = onnx_bytes
        entries["prototypes"] = {"file": file}

    rules = {
        name: RuleCurve(curve=cascade_curve(score, edge_correct, cloud_correct), **entries[name])
        for name, score in scores.items()
    }
    # The automatic choice is among the closed-form rules and the prototypes, judged on the
    # eval rows and the router rows together (the prototypes' router-row scores cross-fitted:
    # its own training rows would look falsely sure). The learned router is offered (a spec
    # can name it) but not chosen by itself: its evidence on the router rows is optimistic
    # even out of fold, since fold models are less sure than the full model it then serves
    # (benchmarks/router.py: it ranked first there and did worse than max-probability on
    # held-out digits).
    candidates = [name for name in scores if name != "learned"]
    evidence = {name: (scores[name], edge_correct) for name in candidates}
    if router_data is not None:  # the router rows too: three times the errors to judge by
        right = fit_p.argmax(axis=1) == fit_columns
        on_router_rows = {n: r.score(fit_p, router_data.inputs) for n, r in closed_form.items()}
        if "prototypes" in scores:
            on_router_rows["prototypes"] = router_scores
        for name in candidates:
            evidence[name] = (
                np.concatenate([scores[name], on_router_rows[name]]),
                np.concatenate([edge_correct, right]),
            )
    aurocs = {name: error_auroc(*pair) for name, pair in evidence.items()}
    return FittedRules(rules, best_rule(aurocs), files, notes)


def error_auroc(score: NDArray[np.float64], right: NDArray[np.bool_]) -> float:
    """How well a score ranks wrong edge answers below right ones: the chance that a random
    wrong answer scores lower than a random right one (ties count half). 0.5 is chance."""
    from scipy.stats import rankdata

    wrong = ~np.asarray(right, dtype=bool)
    n_wrong, n_right = int(wrong.sum()), int((~wrong).sum())
    if n_wrong == 0 or n_right == 0:
        return 0.5
    ranks = rankdata(-np.asarray(score, dtype=np.float64))  # rank 1 = the highest score
    return float((ranks[wrong].sum() - n_wrong * (n_wrong + 1) / 2) / (n_wrong * n_right))


def best_rule(aurocs: dict[str, float]) -> str:
    """The rule that ranks the edge's wrong answers first best (`error_auroc`, over every
    held-out row there is: eval and router data); max-probability, then the order of
    RULE_NAMES, unless another is better by more than rounding. A rule judged by the share it
    needs to reach the cloud's accuracy on a few hundred eval rows hangs on one or two rows
    (benchmarks/router.py: it picked worse than max-probability on digits); the ranking of
    all wrong answers is far steadier."""

    def key(name: str) -> tuple[float, int]:
        order = 0 if name == DEFAULT_RULE else 1 + RULE_NAMES.index(name)
        return (-round(aurocs[name], 6), order)

    return min(aurocs, key=key)


def _prototype_scores(
    probabilities: NDArray[np.float32],
    inputs: NDArray[np.float32],
    fit_columns: NDArray[np.intp],
    classes: int,
    router_data: RouterData | None,
) -> tuple[bytes, NDArray[np.float64], NDArray[np.float64]] | str:
    """(the exported prototypes graph, its scores on the evaluation rows, cross-fitted scores
    on the router rows), or why there is no prototypes rule."""
    from tierwise.package.prototypes import (
        cross_fits,
        cross_fitted_scores,
        export_prototypes,
        fit_prototypes,
    )

    if router_data is None:
        return "no prototypes rule: no router data (router_p, router_y and router_x)"
    if router_data.inputs is None:
        return "no prototypes rule: the router data has no inputs (router_x)"
    known = fit_columns >= 0
    counts = np.bincount(fit_columns[known], minlength=classes)
    if (counts == 0).any():
        return f"no prototypes rule: {int((counts == 0).sum())} classes have no router rows"
    x, columns = router_data.inputs[known], fit_columns[known]
    fits = router_data.prototype_fits
    if not fits:
        whole = fit_prototypes(x, columns, classes)
        fits.update(graph=export_prototypes(whole), parts=cross_fits(x, columns, classes, whole))
    onnx_bytes = fits["graph"]
    shipped = onnx_rule(onnx_bytes, "prototypes")
    on_eval = shipped.score(probabilities, inputs)
    p = np.asarray(router_data.probabilities)
    cross = np.empty(len(p))
    cross[known] = cross_fitted_scores(p[known], x, columns, classes, fits["parts"])
    # A router row whose label the model does not know: its answer is wrong whatever the
    # score; the fit on every row scores it (it was not among the rows fitted).
    if not known.all():
        cross[~known] = shipped.score(p[~known], router_data.inputs[~known])
    return onnx_bytes, on_eval, cross


def _learned_scores(
    probabilities: NDArray[np.float32],
    edge_correct: NDArray[np.bool_],
    fit_p: NDArray[np.float64],
    fit_columns: NDArray[np.intp],
    router_data: RouterData | None,
    notes: list[str],
) -> tuple[bytes, NDArray[np.float64]] | None:
    """(the exported router, its scores on the evaluation rows), or None with a note."""
    if router_data is not None:
        right = fit_p.argmax(axis=1) == fit_columns
        wrong = int((~right).sum())
        if wrong < MIN_WRONG:
            notes.append(f"no learned router: {wrong} wrong edge answers in the router data")
            return None
        onnx_bytes = _export(_fit(router_features(fit_p), right), fit_p.shape[1])
        return onnx_bytes, onnx_rule(onnx_bytes).score(probabilities, None)
    wrong = int((~edge_correct).sum())
    if wrong < 2 * MIN_WRONG:
        notes.append(f"no learned router: {wrong} wrong edge answers in the evaluation data")
        return None
    notes.append("learned router cross-fitted on the evaluation data (no router data given)")
    features = router_features(probabilities)
    halves = _halves(edge_correct)
    cross = np.empty(len(features))
    for held, used in (halves, halves[::-1]):
        model = _export(_fit(features[used], edge_correct[used]), probabilities.shape[1])
        cross[held] = onnx_rule(model).score(probabilities[held], None)
    return _export(_fit(features, edge_correct), probabilities.shape[1]), cross


def _fit(features: NDArray[np.float32], right: NDArray[np.bool_]) -> Any:
    import warnings

    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    folds = min(CV_FOLDS, int((~right).sum()))
    search = LogisticRegressionCV(
        Cs=list(STRENGTHS),
        cv=StratifiedKFold(folds, shuffle=True, random_state=SEED),
        scoring="neg_log_loss",
        max_iter=5000,
    )
    # One BLAS thread: a fit this small is 5x slower when BLAS spreads it over a busy machine
    # (1.2-1.9 s instead of 0.2-0.3 s, measured on 2 cores).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # sklearn's deprecation chatter about penalty defaults
        return make_pipeline(StandardScaler(), search).fit(features, right)


def _export(model: Any, classes: int) -> bytes:
    """The fitted pipeline as one ONNX graph from class probabilities [N, classes] float32 to
    "probabilities" [N, 2] (column 1: the edge answer is right): `feature_graph` feeding
    skl2onnx's graph of the pipeline, so the edge pays one ONNX Runtime call per request."""
    import onnx.compose
    from onnx import helper
    from skl2onnx import to_onnx

    from tierwise.package.export import ONNX_OPSET

    options = {id(model.steps[-1][1]): {"zipmap": False}, id(model): {"zipmap": False}}
    opsets = {"": ONNX_OPSET, "ai.onnx.ml": 3}
    sample = np.zeros((1, 4 + 2 * classes), dtype=np.float32)
    regression = to_onnx(model, sample, options=options, target_opset=opsets)
    features = feature_graph(classes)
    features.ir_version = regression.ir_version  # merge_models wants them equal
    fused = onnx.compose.merge_models(
        features,
        regression,
        io_map=[(FEATURES, regression.graph.input[0].name)],
        outputs=["probabilities"],  # the label branch is for nobody: the rule reads column 1
    )
    versions = {opset.domain: opset.version for opset in fused.opset_import}
    del fused.opset_import[:]  # skl2onnx and the merge each repeat the default domain
    fused.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    return bytes(fused.SerializeToString())


def feature_graph(classes: int) -> Any:
    """`router_features` as an ONNX graph: class probabilities [N, classes] float32 (input
    PROBABILITIES) -> [N, 4 + 2 * classes] float32 (output FEATURES), the same columns in the
    same order, computed in float32 (tests/package/test_routers.py compares the two)."""
    from onnx import TensorProto, helper, numpy_helper

    from tierwise.package.export import ONNX_OPSET

    def const(name: str, value: Any, dtype: Any) -> Any:
        return helper.make_node(
            "Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, dtype), name)
        )

    nodes = [
        const("tiny", TINY, np.float32),
        const("one", 1.0, np.float32),
        const("two", [2], np.int64),
        const("class_axis", [1], np.int64),
        const("split_one_one", [1, 1], np.int64),
        const("minus_log_classes", -np.log(classes), np.float32),
        # logs of the probabilities clipped to [TINY, 1]: kept away from -inf
        helper.make_node("Clip", [PROBABILITIES, "tiny", "one"], ["clipped"]),
        helper.make_node("Log", ["clipped"], ["logs"]),
        # top and runner-up (TopK sorts them), their margin
        helper.make_node("TopK", [PROBABILITIES, "two"], ["top_two", "top_two_at"], axis=1),
        helper.make_node("Split", ["top_two", "split_one_one"], ["top", "second"], axis=1),
        helper.make_node("Sub", ["top", "second"], ["margin"]),
        # normalized entropy: -sum(p log p) / log(classes)
        helper.make_node("Mul", [PROBABILITIES, "logs"], ["p_log_p"]),
        helper.make_node("ReduceSum", ["p_log_p", "class_axis"], ["sum_p_log_p"], keepdims=1),
        helper.make_node("Div", ["sum_p_log_p", "minus_log_classes"], ["entropy"]),
        helper.make_node(
            "Concat", ["top_two", "margin", "entropy", PROBABILITIES, "logs"], [FEATURES], axis=1
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "router_features",
        [helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["N", classes])],
        [helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["N", 4 + 2 * classes])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])


def _halves(edge_correct: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Two halves with the wrong answers split evenly (a seeded shuffle within each kind)."""
    rng = np.random.default_rng(SEED)
    first: list[int] = []
    second: list[int] = []
    for kind in (False, True):
        rows = rng.permutation(np.flatnonzero(edge_correct == kind))
        first.extend(rows[::2])
        second.extend(rows[1::2])
    return np.sort(np.asarray(first)), np.sort(np.asarray(second))


def _true_columns(classes: NDArray[Any], labels: NDArray[Any]) -> NDArray[np.intp]:
    """Each label's column among the classes (-1 for a label the model does not know)."""
    index = {c.item() if hasattr(c, "item") else c: i for i, c in enumerate(classes)}
    return np.asarray([index.get(_plain(y), -1) for y in labels], dtype=np.intp)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
