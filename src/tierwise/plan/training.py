"""Centralized or federated: where each training job runs.

Raw data that may not reach the cloud leaves no choice: federated. Otherwise the job goes
where fewer bytes cross the WAN per month — shipping each site's new data to the cloud, or
shipping model updates back and forth for every federated round.
"""

from __future__ import annotations

from dataclasses import dataclass

from tierwise.spec.model import Spec, TrainingJob
from tierwise.spec.tiers import Reach
from tierwise.spec.units import SECONDS_PER_MONTH, fmt_money, fmt_size


@dataclass
class TrainingDecision:
    job: str
    mode: str  # "federated" | "centralized"
    reason: str
    centralized_bytes_month: float
    federated_bytes_month: float
    centralized_cost: float
    federated_cost: float
    sites: int
    privacy_violation_if_centralized: bool


def decide_training(spec: Spec, job: TrainingJob) -> TrainingDecision:
    sites = spec.feature_sites(job)
    retrains = SECONDS_PER_MONTH / job.cadence
    model = spec.model(job.model)
    update = max(v.size for v in model.variants)
    central = sum(job.data_per_site for _ in sites) * retrains
    # each round: the global model down, an update up, per site
    federated = job.rounds * 2 * update * len(sites) * retrains
    central_cost = sum(job.data_per_site * spec.wan(s).egress for s in sites) * retrains
    fed_cost = sum(job.rounds * 2 * update * spec.wan(s).egress for s in sites) * retrains
    private = job.raw_data_may_reach.rank < Reach.CLOUD.rank
    if private:
        mode = "federated"
        reason = (
            f"federated: raw data may reach only the {job.raw_data_may_reach.value}; "
            f"{len(sites)} sites train locally and share {fmt_size(update)} updates"
        )
    elif federated < central:
        mode = "federated"
        reason = (
            f"federated: updates move {fmt_size(federated)}/month vs "
            f"{fmt_size(central)}/month of raw data ({fmt_money(fed_cost)} vs "
            f"{fmt_money(central_cost)})"
        )
    else:
        mode = "centralized"
        reason = (
            f"centralized: raw data moves {fmt_size(central)}/month vs "
            f"{fmt_size(federated)}/month of updates ({fmt_money(central_cost)} vs "
            f"{fmt_money(fed_cost)})"
        )
    return TrainingDecision(
        job=job.name,
        mode=mode,
        reason=reason,
        centralized_bytes_month=central,
        federated_bytes_month=federated,
        centralized_cost=central_cost,
        federated_cost=fed_cost,
        sites=len(sites),
        privacy_violation_if_centralized=private,
    )
