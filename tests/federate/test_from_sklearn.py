"""A fitted scikit-learn MLP folds into mlp.Params and predicts exactly as before."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from tierwise.federate import mlp
from tierwise.federate.from_sklearn import UnsupportedModelError, params_from_sklearn
from tierwise.scenarios import get_scenario


def _fit(model: Any, x: Any, y: Any) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(converge|Maximum iterations).*")
        return model.fit(x, y)


def test_the_factory_edge_model_predicts_the_same_as_mlp_params() -> None:
    scenario = get_scenario("factory")
    s = scenario.splits
    model = _fit(scenario.edge_model(), s.x_train, s.y_train)  # Pipeline(StandardScaler, MLP)
    params = params_from_sklearn(model)
    assert mlp.shape_of(params) == mlp.MlpShape(features=137, hidden=8, classes=5)
    assert all(p.dtype == np.float32 for p in params)
    ours = mlp.predict_proba(params, s.x_test)
    theirs = model.predict_proba(s.x_test)
    assert np.abs(ours - theirs).max() < 1e-5
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).all()
    y = np.searchsorted(model.classes_, s.y_test)  # class i of the params is classes_[i]
    assert mlp.evaluate(params, s.x_test, y).accuracy == pytest.approx(
        model.score(s.x_test, s.y_test)
    )


def test_a_two_class_logistic_output_becomes_two_softmax_outputs() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    model = _fit(
        make_pipeline(StandardScaler(), MLPClassifier((6,), max_iter=300, random_state=0)), x, y
    )
    assert model[-1].out_activation_ == "logistic"
    params = params_from_sklearn(model)
    assert mlp.shape_of(params).classes == 2
    assert np.abs(mlp.predict_proba(params, x) - model.predict_proba(x)).max() < 1e-5


def test_a_bare_mlp_classifier_folds_without_a_scaler() -> None:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    model = _fit(MLPClassifier((10,), max_iter=50, random_state=0), x, y)
    assert (
        np.abs(mlp.predict_proba(params_from_sklearn(model), x) - model.predict_proba(x)).max()
        < 1e-5
    )


@pytest.fixture(scope="module")
def digits() -> tuple[Any, Any]:
    x, y = load_digits(return_X_y=True)
    return x[:300].astype(np.float32), y[:300]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (MLPClassifier((4, 4), max_iter=5), "2 hidden layers; mlp.Params holds exactly one"),
        (MLPClassifier((4,), activation="tanh", max_iter=5), "activation is 'tanh'"),
        (
            make_pipeline(MinMaxScaler(), MLPClassifier((4,), max_iter=5)),
            "first step is a MinMaxScaler",
        ),
        (
            make_pipeline(StandardScaler(), PCA(5), MLPClassifier((4,), max_iter=5)),
            "the pipeline has 3 steps",
        ),
        (make_pipeline(StandardScaler(), PCA(5)), "the final step is a PCA"),
    ],
)
def test_what_cannot_fold_is_refused_naming_the_part(
    digits: tuple[Any, Any], model: Any, message: str
) -> None:
    _fit(model, *digits)
    with pytest.raises(UnsupportedModelError, match=message):
        params_from_sklearn(model)


def test_an_unfitted_model_is_refused() -> None:
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        params_from_sklearn(MLPClassifier((4,)))


def test_a_multi_label_model_is_refused(digits: tuple[Any, Any]) -> None:
    x, y = digits
    labels = np.stack([y % 2, y > 4], axis=1)
    model = _fit(MLPClassifier((4,), max_iter=5), x, labels)
    with pytest.raises(UnsupportedModelError, match="multi-label"):
        params_from_sklearn(model)
