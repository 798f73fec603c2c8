"""The two ways a target is retrained, as the learner calls them.

Both start from the deployed model: the operator's copy of the scikit-learn pipeline, folded
into the loop's MLP (federate/sklearn_mlp.py).
"""

from __future__ import annotations

from tierwise.errors import UnprocessableError
from tierwise.federate import mlp
from tierwise.learn.loop import Trainer
from tierwise.learn.retrain import Retrained, RetrainJob, example_rows, train_centralized
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

    def centralized(job: RetrainJob) -> Retrained:
        initial = initial_params(job.target)
        x, y = example_rows(job.feedback, initial[0].shape[0])
        if len(y) < settings.min_examples:
            raise UnprocessableError(
                f"{job.target.feature}: {len(y)} raw examples from {', '.join(job.sites)} "
                f"since the drift, {settings.min_examples} needed to retrain"
            )
        return train_centralized(initial, x, y, settings)

    def federated(job: RetrainJob) -> Retrained:
        from tierwise.learn.federated import train_federated

        initial = initial_params(job.target)
        return train_federated(job, settings, wan, initial, capture)

    return {"centralized": centralized, "federated": federated}
