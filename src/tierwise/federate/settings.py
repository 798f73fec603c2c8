"""Everything one federated run needs, flattened to JSON for the processes that share it.

The CLI resolves the spec into a `RunSettings`; the cloud-side ServerApp (a separate
`flwr-serverapp` process started by the SuperLink) reads it back from the run directory.
Sites get only what concerns them, through their SuperNode's node config.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tierwise.spec.federated import FederatedTraining
from tierwise.spec.model import Strategy, TrainingJob

SETTINGS_FILE = "settings.json"
ROBUST_STRATEGIES = frozenset({Strategy.TRIMMED_MEAN, Strategy.MEDIAN, Strategy.KRUM})


@dataclass(frozen=True)
class RunSettings:
    """A resolved federated run: job, sites, model shape, rounds, privacy and compression."""

    job: str
    strategy: str
    rounds: int
    sites: list[str]
    min_sites: int
    round_timeout: float
    dataset: str
    features: int
    classes: int
    hidden_units: int
    local_epochs: int
    learning_rate: float
    batch_size: int
    proximal_mu: float
    trim_fraction: float
    byzantine_sites: int
    seed: int
    run_dir: str
    dp_clip: float | None = None
    dp_noise_multiplier: float | None = None
    dp_delta: float | None = None
    secagg_shares: float | None = None
    secagg_threshold: float | None = None
    secagg_clipping_range: float | None = None
    compression_bits: int | None = None
    connect_timeout: float = 120.0
    # the global model of round 0: a .npz of [W1, b1, W2, b2] (a fine-tune starts from the
    # deployed model's weights); None: random initialisation with `seed`
    initial_model: str | None = None
    # audit/test option: keep a copy of every message the cloud receives
    capture_messages: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def dp(self) -> bool:
        return self.dp_clip is not None

    @property
    def secagg(self) -> bool:
        return self.secagg_shares is not None

    def save(self, run_dir: Path) -> Path:
        path = run_dir / SETTINGS_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> RunSettings:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def default_min_sites(sites: int) -> int:
    """Half the sites, at least two (one site alone is not federated learning)."""
    return min(sites, max(2, math.ceil(sites / 2)))


def resolve(
    job: TrainingJob,
    sites: list[str],
    run_dir: Path,
    features: int,
    classes: int,
    *,
    capture_messages: bool = False,
) -> RunSettings:
    """Flatten a training job and its `federated:` block into run settings."""
    fed = job.federated or FederatedTraining()
    dp, sa = fed.dp, fed.secagg
    return RunSettings(
        job=job.name,
        strategy=job.strategy.value,
        rounds=job.rounds,
        sites=list(sites),
        min_sites=fed.min_sites if fed.min_sites is not None else default_min_sites(len(sites)),
        round_timeout=fed.round_timeout,
        dataset=fed.dataset,
        features=features,
        classes=classes,
        hidden_units=fed.hidden_units,
        local_epochs=fed.local_epochs,
        learning_rate=fed.learning_rate,
        batch_size=fed.batch_size,
        proximal_mu=fed.proximal_mu,
        trim_fraction=fed.trim_fraction,
        byzantine_sites=fed.byzantine_sites,
        seed=fed.seed,
        run_dir=str(run_dir),
        dp_clip=dp.clip if dp else None,
        dp_noise_multiplier=dp.noise_multiplier if dp else None,
        dp_delta=dp.delta if dp else None,
        secagg_shares=sa.shares if sa else None,
        secagg_threshold=sa.threshold if sa else None,
        secagg_clipping_range=sa.clipping_range if sa else None,
        compression_bits=fed.compression_bits,
        capture_messages=capture_messages,
    )


def problems(job: TrainingJob, sites: int) -> list[tuple[tuple[str, ...], str]]:
    """What makes a job unrunnable here, as (field path under the job, message) pairs."""
    fed = job.federated or FederatedTraining()
    found: list[tuple[tuple[str, ...], str]] = []
    if sites < 2:
        found.append((("sites",), f"federated training needs at least 2 sites, got {sites}"))
    if fed.min_sites is not None and fed.min_sites > sites:
        found.append(
            (("federated", "min_sites"), f"min_sites {fed.min_sites} exceeds the {sites} sites")
        )
    if fed.secagg is not None and job.strategy in ROBUST_STRATEGIES:
        found.append(
            (
                ("strategy",),
                f"{job.strategy.value} needs each site's update, but secagg shows the cloud "
                "only their sum; use fedavg or fedprox with secagg",
            )
        )
    if fed.dp is not None and job.strategy not in {Strategy.FEDAVG, Strategy.FEDPROX}:
        found.append(
            (
                ("strategy",),
                f"the DP accountant assumes averaging; {job.strategy.value} is not supported "
                "with dp (use fedavg or fedprox)",
            )
        )
    if job.strategy == Strategy.KRUM and sites <= 2 * fed.byzantine_sites + 2:
        found.append(
            (
                ("federated", "byzantine_sites"),
                f"krum with {fed.byzantine_sites} byzantine sites needs more than "
                f"{2 * fed.byzantine_sites + 2} sites, got {sites}",
            )
        )
    return found
