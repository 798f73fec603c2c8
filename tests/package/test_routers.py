"""Fitting the escalation rules: every rule's curve, and the learned router the edge runs.

Real models throughout: the digits package the package tests build once (`built`, its INT8
variant's outputs on the held-out rows), scikit-learn fitting the router, ONNX Runtime
scoring it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from tierwise.edge.packages import PackageAnswerer
from tierwise.package.calibrate import cascade_curve
from tierwise.package.manifest import Manifest, read_manifest
from tierwise.package.routers import (
    MIN_WRONG,
    FittedRules,
    RouterData,
    best_rule,
    error_auroc,
    fit_rules,
)
from tierwise.package.runtime import PackageModel, load_verified, onnx_rule
from tierwise.rules.routers import RULE_NAMES, fit_temperature, make_rule, router_features
from tierwise.spec.tiers import EscalationRule

from .support import Inputs, Keys, digits

VARIANT = "int8"
ROUTER_ROWS = 300  # of the 597 held-out rows: router data; the rest draw the curves


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """The router's cross-validation runs 5x slower with BLAS threads fighting over 2 cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@dataclass(frozen=True)
class Evaluation:
    """What the build fitted the INT8 variant's rules on: its outputs on the held-out rows."""

    manifest: Manifest
    model: PackageModel
    x: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray
    classes: list[Any]
    cloud_correct: np.ndarray

    @property
    def edge_correct(self) -> np.ndarray:
        return np.asarray(
            np.asarray(self.classes)[self.probabilities.argmax(axis=1)] == self.labels
        )

    def fit(self, rows: Any = slice(None), router: RouterData | None = None) -> FittedRules:
        return fit_rules(
            VARIANT,
            self.probabilities[rows],
            self.x[rows],
            self.labels[rows],
            self.classes,
            self.cloud_correct[rows],
            router,
        )


@pytest.fixture(scope="module")
def evaluation(built: Path, keys: Keys, inputs: Inputs) -> Evaluation:
    _, _, x, y = digits()
    manifest = read_manifest(built)
    model = load_verified(built, [keys.public], VARIANT)
    cloud = joblib.load(inputs.cloud)
    return Evaluation(
        manifest,
        model,
        x,
        model.predict(x).probabilities,
        y,
        list(manifest.output.classes),
        np.asarray(cloud.predict(x) == y),
    )


@pytest.fixture(scope="module")
def with_router_data(evaluation: Evaluation) -> FittedRules:
    """Rules fitted on the first held-out rows, their curves drawn on the others."""
    router = RouterData(
        evaluation.probabilities[:ROUTER_ROWS],
        evaluation.labels[:ROUTER_ROWS],
        evaluation.x[:ROUTER_ROWS],
    )
    return evaluation.fit(slice(ROUTER_ROWS, None), router)


def test_every_rule_gets_a_curve_from_the_edge_alone_to_the_cloud_alone(
    evaluation: Evaluation, with_router_data: FittedRules
) -> None:
    fitted = with_router_data
    assert set(fitted.rules) == set(RULE_NAMES)
    assert fitted.notes == []
    assert fitted.best in fitted.rules
    rest = slice(ROUTER_ROWS, None)
    edge_alone = float(evaluation.edge_correct[rest].mean())
    cloud_alone = float(evaluation.cloud_correct[rest].mean())
    for name, entry in fitted.rules.items():
        escalated = [p.escalated for p in entry.curve]
        assert escalated == sorted(set(escalated)), name
        assert (entry.curve[0].escalated, entry.curve[-1].escalated) == (0.0, 1.0), name
        assert entry.curve[0].accuracy == pytest.approx(edge_alone), name
        assert entry.curve[-1].accuracy == pytest.approx(cloud_alone), name
        assert all(p.local_error_bound is not None for p in entry.curve), name


def test_rules_are_fitted_on_the_router_data_and_drawn_on_the_evaluation_rows(
    evaluation: Evaluation, with_router_data: FittedRules
) -> None:
    rules = with_router_data.rules
    router_p = evaluation.probabilities[:ROUTER_ROWS]
    temperature = rules["temperature"].temperature
    assert temperature == fit_temperature(router_p, evaluation.labels[:ROUTER_ROWS])
    assert (
        temperature
        != fit_temperature(  # the evaluation rows alone would give another T
            evaluation.probabilities[ROUTER_ROWS:], evaluation.labels[ROUTER_ROWS:]
        )
    )
    rest = slice(ROUTER_ROWS, None)
    for name in ("max_probability", "margin", "entropy", "temperature"):
        score = make_rule(name, temperature=temperature).score(evaluation.probabilities[rest], None)
        expected = cascade_curve(
            score, evaluation.edge_correct[rest], evaluation.cloud_correct[rest]
        )
        assert rules[name].curve == expected, name
        assert rules[name].file is None


def test_the_learned_curve_is_the_curve_of_the_exported_router(
    evaluation: Evaluation, with_router_data: FittedRules
) -> None:
    entry = with_router_data.rules["learned"]
    assert entry.file == f"router-{VARIANT}.onnx"
    assert set(with_router_data.files) == {entry.file, f"prototypes-{VARIANT}.onnx"}
    rest = slice(ROUTER_ROWS, None)
    router = onnx_rule(with_router_data.files[entry.file])
    score = router.score(evaluation.probabilities[rest], None)
    right = evaluation.edge_correct[rest]
    assert entry.curve == cascade_curve(score, right, evaluation.cloud_correct[rest])
    # it learned "the edge answer is right", not its opposite: right answers score higher
    assert score[right].mean() > score[~right].mean() + 0.1


def test_the_exported_router_scores_as_the_fitted_scikit_learn_model() -> None:
    """skl2onnx's graph against the pipeline it was made from, on rows neither saw."""
    from tierwise.package.routers import _export, _fit

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(10, 0.3), size=400)
    right = rng.random(400) < p.max(axis=1)  # surer rows are right more often
    model = _fit(router_features(p[:300]), right[:300])
    exported = onnx_rule(_export(model, classes=10))
    expected = model.predict_proba(router_features(p[300:]))[:, 1]
    np.testing.assert_allclose(exported.score(p[300:], None), expected, atol=1e-6)


def test_the_exported_router_is_one_graph_from_class_probabilities() -> None:
    """What the edge feeds it is the edge model's output; what it answers is the regression's
    probabilities, no label branch."""
    import onnx

    from tierwise.package.export import ONNX_OPSET
    from tierwise.package.routers import PROBABILITIES, _export, _fit

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(4, 0.3), size=100)
    model = _fit(router_features(p), rng.random(100) < p.max(axis=1))
    graph = onnx.load_from_string(_export(model, classes=4))
    onnx.checker.check_model(graph, full_check=True)
    (given,) = graph.graph.input
    assert given.name == PROBABILITIES
    assert [d.dim_value for d in given.type.tensor_type.shape.dim][1:] == [4]
    assert [o.name for o in graph.graph.output] == ["probabilities"]
    assert {o.domain: o.version for o in graph.opset_import}[""] == ONNX_OPSET
    assert len(graph.opset_import) == len({o.domain for o in graph.opset_import})


@pytest.mark.parametrize("classes", [2, 3, 10])
def test_the_router_graph_computes_router_features_to_float32_precision(classes: int) -> None:
    """The features the edge's graph computes (float32) are those the router was fitted on
    (router_features: float64, then float32): within two float32 steps, zeros included."""
    import onnxruntime as ort

    from tierwise.package.routers import FEATURES, PROBABILITIES, feature_graph

    rng = np.random.default_rng(classes)
    p = rng.dirichlet(np.full(classes, 0.3), size=2000).astype(np.float32)
    p[:3] = np.eye(classes, dtype=np.float32)[0]  # sure rows: zeros to clip before the log
    p[3] = 1 / classes  # a tie for the top
    session = ort.InferenceSession(
        feature_graph(classes).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (in_graph,) = session.run([FEATURES], {PROBABILITIES: p})
    assert in_graph.dtype == np.float32
    np.testing.assert_allclose(in_graph, router_features(p), rtol=2.5e-7, atol=2.5e-7)


def test_the_packaged_router_is_what_fit_rules_made_and_the_edge_runs(
    evaluation: Evaluation,
) -> None:
    """The build cross-fitted (its evaluation data has no router data); fitting again on the
    same outputs gives the very file in the package, and the edge scores with it."""
    fitted = evaluation.fit()
    assert fitted.notes == [
        "learned router cross-fitted on the evaluation data (no router data given)",
        "no prototypes rule: no router data (router_p, router_y and router_x)",
    ]
    cascade = evaluation.manifest.cascade
    assert cascade is not None
    assert fitted.rules == cascade.rules[VARIANT]
    assert fitted.best == cascade.best_rule[VARIANT]
    file = f"router-{VARIANT}.onnx"
    assert evaluation.model.package_dir is not None
    assert fitted.files[file] == (evaluation.model.package_dir / file).read_bytes()

    built_side = onnx_rule(fitted.files[file]).score(evaluation.probabilities, None)
    _, edge_side = PackageAnswerer(evaluation.model).predict(evaluation.x, EscalationRule.LEARNED)
    np.testing.assert_allclose(edge_side, built_side, atol=1e-6)
    np.testing.assert_allclose(
        evaluation.model.escalation_rule("learned").score(evaluation.probabilities, None),
        built_side,
        atol=1e-6,
    )


def test_cross_fitted_curves_are_not_drawn_by_the_model_on_its_own_training_rows(
    evaluation: Evaluation,
) -> None:
    """The shipped router saw every evaluation row; the curve comes from the two halves'
    routers, each scoring the half it did not see."""
    cascade = evaluation.manifest.cascade
    assert cascade is not None
    shipped = evaluation.model.escalation_rule("learned").score(evaluation.probabilities, None)
    in_sample = cascade_curve(shipped, evaluation.edge_correct, evaluation.cloud_correct)
    assert cascade.curve(VARIANT, "learned") != in_sample


def _rows_with_wrong(evaluation: Evaluation, rows: slice, wrong: int) -> np.ndarray:
    """Row indices within `rows`: every right edge answer and the first `wrong` wrong ones."""
    index = np.arange(len(evaluation.labels))[rows]
    right = evaluation.edge_correct[index]
    return np.sort(np.concatenate([index[right], index[~right][:wrong]]))


@pytest.mark.parametrize("wrong", [MIN_WRONG - 1, MIN_WRONG])
def test_a_router_needs_enough_wrong_answers_to_learn_from(
    evaluation: Evaluation, wrong: int
) -> None:
    keep = _rows_with_wrong(evaluation, slice(None, ROUTER_ROWS), wrong)
    router = RouterData(evaluation.probabilities[keep], evaluation.labels[keep], evaluation.x[keep])
    fitted = evaluation.fit(slice(ROUTER_ROWS, None), router)
    if wrong < MIN_WRONG:
        assert "learned" not in fitted.rules
        assert list(fitted.files) == [f"prototypes-{VARIANT}.onnx"]  # it needs no wrong rows
        assert fitted.notes == [f"no learned router: {wrong} wrong edge answers in the router data"]
        assert set(fitted.rules) == set(RULE_NAMES) - {"learned"}
    else:
        assert "learned" in fitted.rules
        assert fitted.notes == []


def test_without_router_data_cross_fitting_needs_twice_as_many_wrong_answers(
    evaluation: Evaluation,
) -> None:
    keep = _rows_with_wrong(evaluation, slice(None), 2 * MIN_WRONG - 1)
    fitted = evaluation.fit(keep)
    assert "learned" not in fitted.rules
    assert fitted.notes == [
        f"no learned router: {2 * MIN_WRONG - 1} wrong edge answers in the evaluation data",
        "no prototypes rule: no router data (router_p, router_y and router_x)",
    ]


def test_best_rule_ranks_wrong_answers_first_best_with_max_probability_on_ties() -> None:
    same = dict.fromkeys(RULE_NAMES, 0.95)
    assert best_rule(same) == "max_probability"
    assert best_rule({**same, "entropy": 0.96}) == "entropy"
    # two rules equally better than max-probability: the first in RULE_NAMES
    assert best_rule({**same, "learned": 0.97, "margin": 0.97}) == "margin"
    # better by less than rounding is no better
    assert best_rule({**same, "temperature": 0.95 + 1e-9}) == "max_probability"
    # max-probability need not be first in the dict to win a tie
    assert best_rule({"margin": 0.9, "max_probability": 0.9}) == "max_probability"


def test_error_auroc_is_the_chance_a_wrong_answer_scores_below_a_right_one() -> None:
    right = np.array([False, False, True, True, True])
    assert error_auroc(np.array([0.1, 0.2, 0.7, 0.8, 0.9]), right) == 1.0  # all wrong lowest
    assert error_auroc(np.array([0.9, 0.8, 0.1, 0.2, 0.3]), right) == 0.0  # all wrong highest
    assert error_auroc(np.full(5, 0.5), right) == 0.5  # ties count half
    # one wrong answer (0.75) above one right answer (0.7): 5 of 6 pairs in order
    assert error_auroc(np.array([0.1, 0.75, 0.7, 0.8, 0.9]), right) == pytest.approx(5 / 6)
    assert error_auroc(np.array([0.1, 0.2]), np.array([True, True])) == 0.5  # nothing wrong


def test_router_data_without_inputs_fits_every_rule_but_the_prototypes(
    evaluation: Evaluation,
) -> None:
    """Router data from before router_x: the rules reading only probabilities learn from it."""
    router = RouterData(evaluation.probabilities[:ROUTER_ROWS], evaluation.labels[:ROUTER_ROWS])
    fitted = evaluation.fit(slice(ROUTER_ROWS, None), router)
    assert set(fitted.rules) == set(RULE_NAMES) - {"prototypes"}
    assert fitted.notes == ["no prototypes rule: the router data has no inputs (router_x)"]
    assert list(fitted.files) == [f"router-{VARIANT}.onnx"]


def test_the_prototypes_may_be_chosen_as_best(
    with_router_data: FittedRules, evaluation: Evaluation
) -> None:
    """On digits the input-aware rule ranks the edge's wrong answers first best (judged on
    the evaluation rows and its cross-fitted router-row scores), so the package deploys it;
    on the evaluation rows alone it ranks them better than max-probability too."""
    assert with_router_data.best == "prototypes"
    rest = slice(ROUTER_ROWS, None)
    file = with_router_data.rules["prototypes"].file
    assert file is not None
    rule = onnx_rule(with_router_data.files[file], "prototypes")
    p, x, right = evaluation.probabilities[rest], evaluation.x[rest], evaluation.edge_correct[rest]
    prototypes = error_auroc(rule.score(p, x), right)
    assert prototypes > error_auroc(make_rule("max_probability").score(p, x), right)
