"""What the learner needs to know of a feature it may retrain, and how it goes about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tierwise.package.measure import DEFAULT_RUNS


@dataclass(frozen=True)
class LoopTarget:
    """One feature the loop looks after.

    `model` is the operator's copy of the deployed edge model (a scikit-learn pipeline the
    retraining fine-tunes, federate/sklearn_mlp.py); `eval_data` the operator's evaluation
    rows a package is measured on; `field_files` where each site's agent keeps its labelled
    field sample (edge/field_sample.py) — read only by that site's federated client.
    """

    feature: str
    package: str
    classes: list[int | str]  # the package's output classes, in order (as its manifest has)
    raw_may_reach_cloud: bool  # the spec's raw_data_may_reach is the cloud
    model: Path
    eval_data: Path
    field_files: dict[str, Path] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """Where retraining lives: with the data where it may move, at the sites otherwise."""
        return "centralized" if self.raw_may_reach_cloud else "federated"


@dataclass(frozen=True)
class LoopSettings:
    """How eagerly the loop acts, and how a retrained model must prove itself."""

    poll_s: float = 2.0  # how often the cloud's drift verdicts are read
    # After the first verdict, how long the drifted sites gather rows before training may
    # start (rows from before the verdict may predate the shift) ...
    settle_s: float = 20.0
    # ... and how much they must have gathered since it. Federated: rows summarized across
    # the drifted sites — the labelled ones among them are what each site trains on, and
    # distinct rows are what a fine-tuning lacks: on the factory (docs/learning.md) ~650
    # labelled rows won back all but ~2 points of what the model knew, ~2,000 all of it.
    # Counted in rows, not seconds, so a slow stream waits longer instead of shipping a
    # model that forgot. Centralized: raw examples (at most 32 a feedback report).
    min_rows: int = 4000
    min_examples: int = 200
    max_wait_s: float = 300.0  # since the drift, for min_rows/min_examples; then give up
    cooldown_s: float = 60.0  # after a job ends, before the same feature is retrained again
    rounds: int = 10  # federated rounds
    epochs: int = 20  # local epochs (per round when federated)
    learning_rate: float = 0.05
    batch_size: int = 32
    held_out: float = 0.25  # share of the field rows kept aside to judge the retrained model
    bake_s: float = 10.0  # the canary must serve this long ...
    min_canary_requests: int = 100  # ... and this many requests ...
    min_canary_feedback: int = 50  # ... with this many labelled ones, before promotion
    latency_runs: int = DEFAULT_RUNS  # timed runs per batch size when a package is measured
    seed: int = 0
