"""What every scenario is: a data set, a small edge model and a larger cloud model, one fixed split.

A scenario supplies three things — `load` (features and labels), `edge_model` and
`cloud_model` (unfitted scikit-learn estimators) — and the base class does the rest the same
way for all: one stratified 60/20/20 split with a fixed seed (train / eval / test), training
both models on the training part, and the evaluation data a package build uses (the eval
part, with the training inputs to calibrate INT8 and to distil students on, and the edge
model's out-of-fold outputs on the training part for the escalation rules to learn from).
The test part is for nobody but the report that checks a package's claims on data its
threshold was not chosen on.

Build side: scikit-learn is imported inside methods.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import MissingDependencyError
from tierwise.package.evaldata import EvalData

SEED = 0
ROUTER_FOLDS = 5  # out-of-fold edge outputs for the escalation rules (package/routers.py)
ROUTER_JOBS = 2  # processes fitting those folds at once
EVAL_SHARE = 0.2
TEST_SHARE = 0.2


@dataclass(frozen=True)
class Splits:
    x_train: NDArray[np.float32]
    y_train: NDArray[Any]
    x_eval: NDArray[np.float32]
    y_eval: NDArray[Any]
    x_test: NDArray[np.float32]
    y_test: NDArray[Any]


@dataclass(frozen=True)
class TrainedModels:
    edge: Any
    cloud: Any


class Scenario(ABC):
    """One example's data and models; subclasses fill in the four class attributes and 3 methods."""

    name: ClassVar[str]
    example: ClassVar[str]  # the example spec (examples/<example>.yaml) it stands in for
    summary: ClassVar[str]
    synthetic: ClassVar[bool]  # True: a labelled generator in this repo, not real data

    @abstractmethod
    def load(self) -> tuple[NDArray[np.float32], NDArray[Any]]:
        """All samples: float32 features [N, F] and labels [N]."""

    @abstractmethod
    def edge_model(self) -> Any:
        """A small, unfitted classifier that skl2onnx can export."""

    @abstractmethod
    def cloud_model(self) -> Any:
        """A larger, more accurate unfitted classifier (what the cloud runs)."""

    @cached_property
    def splits(self) -> Splits:
        try:
            from sklearn.model_selection import train_test_split
        except ImportError:
            raise MissingDependencyError(f"the {self.name} scenario", "package") from None
        x, y = self.load()
        x_train, x_rest, y_train, y_rest = train_test_split(
            x, y, test_size=EVAL_SHARE + TEST_SHARE, random_state=SEED, stratify=y
        )
        x_eval, x_test, y_eval, y_test = train_test_split(
            x_rest,
            y_rest,
            test_size=TEST_SHARE / (EVAL_SHARE + TEST_SHARE),
            random_state=SEED,
            stratify=y_rest,
        )
        return Splits(x_train, y_train, x_eval, y_eval, x_test, y_test)

    def cross_splits(self, folds: int, seed: int = SEED) -> Iterator[Splits]:
        """The data cut `folds` ways for cross-validated reports: each fold in turn is the
        test part; the rest is split into train and eval in the same 60:20 proportion.
        Another `seed` cuts them another way (repeated cross-validation)."""
        from sklearn.model_selection import StratifiedKFold, train_test_split

        x, y = self.load()
        outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for rest, test in outer.split(x, y):
            x_train, x_eval, y_train, y_eval = train_test_split(
                x[rest],
                y[rest],
                test_size=EVAL_SHARE / (1 - TEST_SHARE),
                random_state=seed,
                stratify=y[rest],
            )
            yield Splits(x_train, y_train, x_eval, y_eval, x[test], y[test])

    def train(self, splits: Splits | None = None) -> TrainedModels:
        """Fit the edge and the cloud model on the training part (seconds on a CPU)."""
        s = splits or self.splits
        with _quiet_single_thread():
            edge = self.edge_model().fit(s.x_train, s.y_train)
            cloud = self.cloud_model().fit(s.x_train, s.y_train)
        return TrainedModels(edge, cloud)

    def out_of_fold(self, splits: Splits) -> NDArray[np.float32]:
        """The edge model's class probabilities on each training row, from a copy fitted on
        the other folds: edge outputs on unseen data, labelled, for the escalation rules.
        Classes in sorted order (the fitted model's `classes_`)."""
        from joblib import Parallel, delayed
        from sklearn.model_selection import StratifiedKFold

        x, y = splits.x_train, splits.y_train
        classes = np.unique(y)
        folds = list(StratifiedKFold(ROUTER_FOLDS, shuffle=True, random_state=SEED).split(x, y))
        # The folds are independent fits, each seeded and on one BLAS thread: two processes
        # give what one gives, bit for bit, in about 3/4 of the time on two cores.
        parts = Parallel(n_jobs=ROUTER_JOBS)(
            delayed(_fold_probabilities)(self.edge_model(), x[fit], y[fit], x[out], classes)
            for fit, out in folds
        )
        p = np.empty((len(x), len(classes)), dtype=np.float32)
        for (_, out), part in zip(folds, parts, strict=True):
            p[out] = part
        return p

    @cached_property
    def router_probabilities(self) -> NDArray[np.float32]:
        """`out_of_fold` on the scenario's own split (computed once)."""
        return self.out_of_fold(self.splits)

    def eval_data(
        self, splits: Splits | None = None, source: str | None = None, router_data: bool = True
    ) -> EvalData:
        """What `tierwise package --data <scenario>` evaluates and calibrates on (or the same
        from another split of the data); `router_data=False` leaves out the out-of-fold
        outputs, the one part that takes training (seconds to a minute)."""
        s = splits or self.splits
        router_p = None
        if router_data:
            router_p = self.router_probabilities if splits is None else self.out_of_fold(s)
        return EvalData(
            s.x_eval,
            s.y_eval,
            s.x_train,  # the quantizer takes the first 1,024; distillation all of them
            source or f"scenario:{self.name}",
            router_p=router_p,
            router_y=s.y_train if router_data else None,
            router_x=s.x_train if router_data else None,
        )

    def test_data(self) -> EvalData:
        """Held out from everything else: for checking a package's claims afterwards."""
        s = self.splits
        return EvalData(s.x_test, s.y_test, None, f"scenario:{self.name}:test")


@contextmanager
def _quiet_single_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # One BLAS thread: on a busy 2-core machine, oversubscribed BLAS trains the digits MLP
    # in 127 s instead of 10 s (measured), and leaves the other core to other work.
    with warnings.catch_warnings(), threadpool_limits(1):
        # An MLP stopping at max_iter is a chosen budget here, not a surprise.
        warnings.filterwarnings("ignore", message=".*(converge|Maximum iterations).*")
        yield


def _fold_probabilities(
    model: Any, x_fit: NDArray[Any], y_fit: NDArray[Any], x_out: NDArray[Any], classes: NDArray[Any]
) -> NDArray[np.float32]:
    """One fold of `Scenario.out_of_fold` (in a worker process): `model` fitted on the other
    folds, its probabilities for this one, a column per class of `classes`."""
    with _quiet_single_thread():
        model.fit(x_fit, y_fit)
        p = model.predict_proba(x_out)
    out = np.zeros((len(x_out), len(classes)), dtype=np.float32)
    out[:, np.searchsorted(classes, model.classes_)] = p
    return out


def calibrated_svm(c: float, gamma: float | str = "scale", scale: bool = True) -> Any:
    """An RBF-kernel SVM with probabilities calibrated on shuffled 5-fold predictions.

    The cloud model of most scenarios: more accurate than a small network on small data, and
    it carries its support vectors (a few hundred training samples) wherever it runs.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svm = CalibratedClassifierCV(
        SVC(C=c, gamma=gamma),
        ensemble=False,
        cv=StratifiedKFold(5, shuffle=True, random_state=SEED),
    )
    return make_pipeline(StandardScaler(), svm) if scale else svm


def scaled_mlp(hidden: tuple[int, ...], alpha: float, max_iter: int) -> Any:
    """Standardized inputs into a ReLU MLP (what a gateway or a microcontroller can run)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPClassifier(hidden, alpha=alpha, max_iter=max_iter, random_state=SEED)
    return make_pipeline(StandardScaler(), mlp)
