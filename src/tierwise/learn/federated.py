"""Federated retraining: the drifted sites fine-tune the deployed model together on Flower.

Each site's SuperNode reads the labelled field sample its own agent keeps, from the drift's
start on (federate/field.py); the cloud gets back only weights and, per site, the scores of
the starting and the final model on its held-out rows with their confidence counts. Each
site reaches the SuperLink through a WAN proxy of its own conditions; with `capture` the
proxies keep every byte they forwarded (the wire test reads them).
"""

from __future__ import annotations

import time

from tierwise.errors import TierwiseError
from tierwise.federate import mlp
from tierwise.learn.retrain import Retrained, RetrainJob
from tierwise.learn.target import LoopSettings
from tierwise.wan.conditions import WanConditions


class RetrainingFailedError(TierwiseError):
    """A federated retraining run ended without a model."""


def train_federated(
    job: RetrainJob,
    settings: LoopSettings,
    wan: dict[str, WanConditions],
    initial: mlp.Params,
    capture: bool = False,
) -> Retrained:
    """Fine-tune `initial` across the job's sites on their field rows since it began."""
    target, sites, since, work_dir = job.target, job.sites, job.since, job.work_dir
    from tierwise.federate.field import FieldJob, run_field_federation
    from tierwise.federate.runner import RunOptions

    missing = [s for s in sites if s not in target.field_files]
    if missing:
        raise RetrainingFailedError(f"{target.feature}: no field sample known for {missing}")
    field_job = FieldJob(
        name=f"{target.feature}-retrain",
        site_data={s: target.field_files[s] for s in sites},
        initial=initial,
        classes=len(target.classes),
        since=since,
        rounds=settings.rounds,
        min_sites=len(sites),
        seed=settings.seed,
    )
    run_dir = work_dir / f"federated-{time.strftime('%Y%m%d-%H%M%S')}"
    options = RunOptions(
        run_dir=run_dir, wan={s: wan[s] for s in sites if s in wan}, wan_capture=capture
    )
    result = run_field_federation(field_job, options)
    first, final = result.initial_evaluation, result.final_evaluation
    if not result.ok or first is None or final is None or final.confidence_counts is None:
        raise RetrainingFailedError(
            f"{target.feature}: federated retraining across {', '.join(sites)} failed: "
            f"{result.reason or 'no evaluation came back'} (logs: {run_dir})"
        )
    return Retrained(
        params=result.params(),
        where="federated",
        train_rows=sum(
            int(site.get("train_examples") or 0) for site in result.rounds[-1]["sites"].values()
        ),
        held_out_rows=final.examples,
        before=first.accuracy,
        after=final.accuracy,
        confidence=list(final.confidence_counts),
    )
