"""The two ways a target is retrained, as the learner calls them.

Both start from the deployed model: the operator's copy of the scikit-learn pipeline, folded
into the loop's MLP (federate/sklearn_mlp.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tierwise.errors import UnprocessableError
from tierwise.federate import mlp
from tierwise.learn.loop import Trainer
from tierwise.learn.retrain import Retrained, example_rows, train_centralized
from tierwise.learn.target import LoopSettings, LoopTarget
from tierwise.wan.conditions import WanConditions


def initial_params(target: LoopTarget) -> mlp.Params:
    """The deployed edge model as MLP parameters; UnsupportedModelError when it does not fold
    into one."""
    import joblib

    from tierwise.federate.from_sklearn import params_from_sklearn

    return params_from_sklearn(joblib.load(target.model))


def default_trainers(
    settings: LoopSettings, wan: dict[str, WanConditions], capture: bool = False
) -> dict[str, Trainer]:
    """Centralized on the raw examples sites sent; federated over `wan`-conditioned links
    (`capture`: the WAN proxies keep every byte they forwarded, for the wire test)."""

    def centralized(
        target: LoopTarget,
        sites: list[str],
        since: float,
        feedback: list[dict[str, Any]],
        work_dir: Path,
    ) -> Retrained:
        initial = initial_params(target)
        x, y = example_rows(feedback, initial[0].shape[0])
        if len(y) < settings.min_rows:
            raise UnprocessableError(
                f"{target.feature}: {len(y)} raw examples from {', '.join(sites)} since the "
                f"drift, {settings.min_rows} needed to retrain"
            )
        return train_centralized(initial, x, y, settings)

    def federated(
        target: LoopTarget,
        sites: list[str],
        since: float,
        feedback: list[dict[str, Any]],
        work_dir: Path,
    ) -> Retrained:
        from tierwise.learn.federated import train_federated

        return train_federated(
            target, sites, since, settings, work_dir, wan, initial_params(target), capture
        )

    return {"centralized": centralized, "federated": federated}
