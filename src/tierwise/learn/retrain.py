"""Retraining on field rows, and what a retrained model is judged by before it may ship.

Both ways of retraining fine-tune the deployed model (federate/mlp.py's one-hidden-layer MLP,
into which the deployed scikit-learn pipeline folds exactly) rather than start from scratch:
a shifted sensor mostly needs the first layer re-scaled, which a few hundred field rows teach,
while the rest of what the model knew stays. Each judges the result on field rows it did not
train on, beside the deployed model on the same rows: `before` and `after` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.federate import mlp
from tierwise.learn.target import LoopSettings, LoopTarget
from tierwise.rules.drift import confidence_counts


@dataclass(frozen=True)
class RetrainJob:
    """What a trainer is asked: retrain `target` on what `sites` gathered since `since`
    (wall clock); `feedback` is their summed feedback since then (cloud/field_feedback.py)."""

    target: LoopTarget
    sites: list[str]
    since: float
    feedback: list[dict[str, Any]]
    work_dir: Path


@dataclass(frozen=True)
class Retrained:
    """A retrained model and the evidence for it."""

    params: mlp.Params
    where: str  # "centralized" or "federated"
    train_rows: int
    held_out_rows: int
    before: float  # the deployed model's accuracy on the held-out field rows
    after: float  # the retrained model's, on the same rows
    confidence: list[int]  # the retrained model's top-probability counts on them (integers)

    def describe(self) -> str:
        return (
            f"{self.where}: {self.train_rows} field rows, accuracy on {self.held_out_rows} "
            f"held-out rows {self.before:.1%} -> {self.after:.1%}"
        )


def split_rows(
    x: NDArray[np.float32], y: NDArray[np.int64], held_out: float, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
    """A seeded shuffle cut into training rows and held-out rows."""
    order = np.random.default_rng(seed).permutation(len(y))
    cut = len(y) - max(1, round(len(y) * held_out))
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]


def train_centralized(
    initial: mlp.Params, x: NDArray[np.float32], y: NDArray[np.int64], settings: LoopSettings
) -> Retrained:
    """Fine-tune `initial` on rows the sites were allowed to send (in this process)."""
    x_train, y_train, x_test, y_test = split_rows(x, y, settings.held_out, settings.seed)
    params, _loss = mlp.train(
        initial,
        x_train,
        y_train,
        epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        seed=settings.seed,
    )
    top = mlp.predict_proba(params, x_test).max(axis=1)
    return Retrained(
        params=params,
        where="centralized",
        train_rows=len(y_train),
        held_out_rows=len(y_test),
        before=mlp.evaluate(initial, x_test, y_test).accuracy,
        after=mlp.evaluate(params, x_test, y_test).accuracy,
        confidence=[int(c) for c in confidence_counts(top)],
    )


def example_rows(
    feedback: list[dict[str, Any]], features: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The raw examples of sites' summed feedback (cloud/field_feedback.py) as rows and labels:
    the true class where the device gave one, else the cloud model's answer."""
    rows, labels = [], []
    for fed in feedback:
        for example in fed["examples"]:
            label = example["label"] if example["label"] is not None else example["cloud_label"]
            if label is None or len(example["inputs"]) != features:
                continue
            rows.append(example["inputs"])
            labels.append(int(label))
    return np.asarray(rows, np.float32).reshape(-1, features), np.asarray(labels, np.int64)
