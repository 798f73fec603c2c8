"""The prototypes rule at build: its fit, its ONNX graph against the numpy reference, its
honest (cross-fitted) scores, and a signed package carrying it that the edge runs as built.

Real models: digits (the package tests' MLP and SVM), k-means by scikit-learn, the graph by
ONNX Runtime.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import joblib
import numpy as np
import onnx
import pytest

from tierwise.edge.packages import PackageAnswerer
from tierwise.errors import VerificationError
from tierwise.package.build import BuildResult
from tierwise.package.calibrate import cascade_curve
from tierwise.package.evaldata import EvalData, save_eval_data
from tierwise.package.export import ONNX_OPSET
from tierwise.package.prototypes import (
    INPUTS,
    MIN_SCALE,
    PROBABILITIES,
    SCORE,
    cross_fitted_scores,
    export_prototypes,
    fit_prototypes,
)
from tierwise.package.runtime import load_verified, onnx_rule
from tierwise.rules.routers import prototype_scores
from tierwise.rules.routers.prototypes import class_distances
from tierwise.spec.tiers import EscalationRule

from .support import Inputs, Keys, build, digits

ROUTER_ROWS = 300  # of the 597 held-out digits rows: router data; the rest evaluate


def _blobs(rows: int, classes: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows around one centre per class, features on very different scales."""
    rng = np.random.default_rng(seed)
    columns = rng.integers(0, classes, rows)
    centres = rng.normal(0, 3, (classes, features))
    scales = np.geomspace(0.01, 100, features)
    x = (centres[columns] + rng.normal(0, 1, (rows, features))) * scales
    return x.astype(np.float32), columns


def test_each_class_gets_its_prototypes_and_a_short_class_repeats_its_last() -> None:
    x, columns = _blobs(300, 3, 4, seed=0)
    columns[columns == 2] = 0
    columns[:5] = 2  # a class of five rows
    fit = fit_prototypes(x, columns, 3, per_class=12)
    assert fit.centres.shape == (3, 12, 4)
    short = fit.centres[2]
    np.testing.assert_array_equal(short[5:], np.repeat(short[4:5], 7, axis=0))
    z = (x[:5] - fit.mean) / fit.scale  # five rows: they are their own prototypes
    np.testing.assert_allclose(np.sort(short[:5], axis=0), np.sort(z, axis=0), atol=1e-5)
    assert fit.tau == pytest.approx(float(np.median(class_distances(fit, x).min(axis=1))))


def test_standardizing_puts_features_on_one_scale_and_floors_nearly_constant_ones() -> None:
    """Features 100x apart weigh alike; one nearly constant (a digits border pixel, inked in
    a few images) is not blown up to dominate every distance: its scale is floored at
    MIN_SCALE of the median feature's (digits: 0.71x the oracle rate floored so, 0.83x not)."""
    rng = np.random.default_rng(1)
    columns = rng.integers(0, 2, 400)
    x = rng.normal(columns[:, None], 1.0, (400, 5)) * np.array([1.0, 10.0, 100.0, 1e-4, 0.0])
    x[:, 4] = 7.0  # constant: no division by zero
    fit = fit_prototypes(x.astype(np.float32), columns, 2)
    z = (x - fit.mean) / fit.scale
    np.testing.assert_allclose(z[:, :3].std(axis=0), 1.0, rtol=1e-4)
    std = x.std(axis=0)
    floor = MIN_SCALE * np.median(std)
    np.testing.assert_allclose(fit.scale[3:], floor, rtol=1e-4)
    assert np.all(np.isfinite(z))
    assert np.all(z[:, 4] == 0)


def test_a_class_without_rows_is_refused() -> None:
    x, columns = _blobs(50, 2, 3, seed=2)
    with pytest.raises(ValueError, match=r"no training rows of class column\(s\) 2"):
        fit_prototypes(x, columns, 3)


@pytest.mark.parametrize(("classes", "features"), [(2, 30), (3, 5), (10, 64)])
def test_the_graph_scores_as_the_numpy_reference(classes: int, features: int) -> None:
    x, columns = _blobs(60 * classes, classes, features, seed=classes)
    columns[: classes * 2] = np.arange(classes * 2) % classes  # every class present
    fit = fit_prototypes(x[:-100], columns[:-100], classes)
    graph = export_prototypes(fit)
    onnx.checker.check_model(onnx.load_from_string(graph), full_check=True)
    rng = np.random.default_rng(classes)
    # the edge mostly answers the row's class, sometimes another: scores high and low
    p = 0.5 * rng.dirichlet(np.full(classes, 0.4), size=100)
    p[np.arange(100), columns[-100:]] += 0.5 * (rng.random(100) < 0.7)
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    p[0] = 1.0 / classes  # a tie for the top: the first class, as numpy's argmax
    rows = x[-100:]
    expected = prototype_scores(fit, p, rows)
    rule = onnx_rule(graph, "prototypes")
    np.testing.assert_allclose(rule.score(p, rows), expected, atol=2e-6)
    assert rule.score(p[:0], rows[:0]).shape == (0,)  # an empty batch too
    assert 0.1 < expected.mean() < 0.99  # not a degenerate all-0 or all-1 score


def test_the_graph_is_one_float32_graph_of_probabilities_and_inputs() -> None:
    x, columns = _blobs(100, 3, 6, seed=3)
    model = onnx.load_from_string(export_prototypes(fit_prototypes(x, columns, 3)))
    given = [
        (i.name, [d.dim_value for d in i.type.tensor_type.shape.dim][1:]) for i in model.graph.input
    ]
    assert given == [(PROBABILITIES, [3]), (INPUTS, [6])]
    assert [o.name for o in model.graph.output] == [SCORE]
    assert {o.domain: o.version for o in model.opset_import} == {"": ONNX_OPSET}


def test_cross_fitted_scores_do_not_flatter_a_row_its_own_prototype_would() -> None:
    """A mislabelled row in another class's region: the prototypes fitted on it place a
    prototype of its label right on it (it looks sure); fitted on the other folds, it is
    among the other class (its answer, its label, is doubted)."""
    x, columns = _blobs(400, 2, 3, seed=4)
    odd = int(np.flatnonzero(columns == 0)[0])
    columns[odd] = 1  # labelled 1 among the 0s
    p = np.tile([0.1, 0.9], (len(x), 1))  # the edge answers 1 everywhere, surely
    fit = fit_prototypes(x, columns, 2, per_class=400)  # every row its own prototype
    in_sample = prototype_scores(fit, p, x)[odd]
    cross = cross_fitted_scores(p, x, columns, 2)
    assert in_sample > 0.8  # its own prototype is nearest: as sure as the edge (0.9)
    assert cross[odd] < 0.01
    assert cross.shape == (len(x),)


@pytest.fixture(scope="module")
def with_inputs(
    tmp_path_factory: pytest.TempPathFactory, inputs: Inputs, keys: Keys
) -> BuildResult:
    """A digits package built with router data and its inputs: the first held-out rows (the
    edge model never trained on them) are the router rows, the rest evaluate."""
    _, _, x, y = digits()
    edge = joblib.load(inputs.edge)
    where = tmp_path_factory.mktemp("with-inputs")
    data = EvalData(
        x[ROUTER_ROWS:],
        y[ROUTER_ROWS:],
        x[:256],
        "eval.npz",
        router_p=edge.predict_proba(x[:ROUTER_ROWS]).astype(np.float32),
        router_y=y[:ROUTER_ROWS],
        router_x=x[:ROUTER_ROWS],
    )
    save_eval_data(where / "eval.npz", data)
    return build(Inputs(inputs.edge, inputs.cloud, where / "eval.npz"), where / "pkg", keys)


def test_the_package_signs_the_prototypes_graph_and_the_edge_scores_its_curve(
    with_inputs: BuildResult, inputs: Inputs, keys: Keys
) -> None:
    manifest = with_inputs.manifest
    cascade = manifest.cascade
    assert cascade is not None
    _, _, x, y = digits()
    rows, labels = x[ROUTER_ROWS:], y[ROUTER_ROWS:]
    cloud_right = np.asarray(joblib.load(inputs.cloud).predict(rows) == labels)
    for variant in manifest.variants:
        entry = cascade.rule(variant.name, "prototypes")
        assert entry.file == f"prototypes-{variant.name}.onnx"
        assert entry.file in manifest.files  # hashed, so signed
        model = load_verified(with_inputs.path, [keys.public], variant.name)
        prediction = model.predict(rows)
        score = model.escalation_rule("prototypes").score(prediction.probabilities, rows)
        edge_right = np.asarray(prediction.labels == labels)
        assert entry.curve == cascade_curve(score, edge_right, cloud_right)
        _, agent_side = PackageAnswerer(model).predict(rows, EscalationRule.PROTOTYPES)
        np.testing.assert_allclose(agent_side, score, atol=1e-6)
        # the input matters: sure answers far from their class's rows are doubted
        assert score[~edge_right].mean() < prediction.confidence[~edge_right].mean()


def test_a_changed_prototypes_file_is_refused(
    with_inputs: BuildResult, keys: Keys, tmp_path: Path
) -> None:
    package = Path(shutil.copytree(with_inputs.path, tmp_path / "pkg"))
    file = package / "prototypes-int8.onnx"
    blob = bytearray(file.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    file.write_bytes(bytes(blob))
    with pytest.raises(VerificationError, match=r"prototypes-int8\.onnx was changed after signing"):
        load_verified(package, [keys.public])


def test_without_router_inputs_the_package_has_no_prototypes_rule(built: Path, keys: Keys) -> None:
    """The session's package: evaluation data without router data at all."""
    cascade = load_verified(built, [keys.public]).manifest.cascade
    assert cascade is not None
    assert all("prototypes" not in rules for rules in cascade.rules.values())
    assert not any(
        f.startswith("prototypes-") for f in load_verified(built, [keys.public]).manifest.files
    )


def test_a_class_too_small_to_hold_out_is_kept_in_every_fold() -> None:
    """Three rows of class 2: every fold's prototypes have the class; those rows are scored
    by the fit on every row (few, and said so), the others by the folds that held them out."""
    x, columns = _blobs(200, 2, 3, seed=5)
    columns[:3] = 2
    p = np.full((200, 3), 1 / 3)
    cross = cross_fitted_scores(p, x, columns, 3)
    assert np.isfinite(cross).all()
    on_every_row = prototype_scores(fit_prototypes(x, columns, 3), p[:3], x[:3])
    np.testing.assert_allclose(cross[:3], on_every_row)
