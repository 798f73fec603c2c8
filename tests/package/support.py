"""Small, fast real models and packages for the package tests (digits, trained in a second)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.package.build import BuildOptions, BuildResult, build_package
from tierwise.package.evaldata import EvalData, load_eval_data, save_eval_data
from tierwise.package.keys import write_keypair

LATENCY_RUNS = 10  # the tests check that latency is measured, not how fast it is


@dataclass(frozen=True)
class Inputs:
    """Files `tierwise package` takes: an edge model, a cloud model, evaluation data."""

    edge: Path
    cloud: Path
    data: Path


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path


@cache
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits scaled to [0, 1]: 1,200 training rows, 597 held out."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return x[:1200], y[:1200], x[1200:], y[1200:]


def train(kind: str) -> Any:
    """A fitted digits classifier: 'mlp' (edge), 'svm' (cloud), 'tree', 'logistic'."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier
    from threadpoolctl import threadpool_limits

    models = {
        "mlp": lambda: MLPClassifier((64,), max_iter=60, random_state=0),
        "svm": lambda: CalibratedClassifierCV(SVC(C=10, gamma=0.32), ensemble=False),
        "tree": lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
        "logistic": lambda: LogisticRegression(max_iter=200),
    }
    x, y, _, _ = digits()
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        return models[kind]().fit(x, y)


def write_inputs(where: Path) -> Inputs:
    import joblib

    where.mkdir(parents=True, exist_ok=True)
    x, _, x_eval, y_eval = digits()
    inputs = Inputs(where / "edge.joblib", where / "cloud.joblib", where / "eval.npz")
    joblib.dump(train("mlp"), inputs.edge)
    joblib.dump(train("svm"), inputs.cloud)
    save_eval_data(inputs.data, EvalData(x_eval, y_eval, x[:256], "eval.npz"))
    return inputs


def make_keys(where: Path, name: str = "release") -> Keys:
    return Keys(*write_keypair(where, name))


def build(
    inputs: Inputs,
    out: Path,
    keys: Keys,
    version: int = 1,
    name: str = "digits",
    model: Path | None = None,
    cloud: bool = True,
) -> BuildResult:
    options = BuildOptions(
        name,
        version,
        keys.private,
        inputs.cloud if cloud else None,
        latency_runs=LATENCY_RUNS,
    )
    return build_package(model or inputs.edge, load_eval_data(inputs.data), out, options)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (links as their target text): to prove nothing changed."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = b"-> " + str(path.readlink()).encode()
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out
