"""Federated fine-tuning on what the sites saw in the field: the learning loop's retraining
where a feature's raw data may not leave its sites.

Each site's data is the field sample its edge agent kept (`fieldsamples`): only that site's
ClientApp opens it, splits it into training and held-out rows with the job's seed, and
trains from the deployed model's weights (`FieldJob.initial`, e.g. `params_from_sklearn` of
the model in the package) with FedAvg on Flower, the same round loop as `tierwise federate`.
What comes back: the fine-tuned weights, and the starting and final models' accuracy, loss
and confidence histogram on the union of the sites' held-out rows (integers and three
scalars per site; never a row).

The defaults are what recovers the factory edge model from a sensor-gain drift in three
rounds (tests/federate/test_field_federation.py): a few local epochs of plain SGD at a
learning rate small enough not to forget what the deployed model knew.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tierwise.federate import mlp
from tierwise.federate.deployment import NodeConfig
from tierwise.federate.runner import RunOptions, RunResult, run_settings
from tierwise.federate.settings import RunSettings, default_min_sites
from tierwise.federate.sitedata import site_dirname

INITIAL_MODEL = "initial.npz"


@dataclass(frozen=True)
class FieldJob:
    """Fine-tune `initial` on the field samples of `site_data`'s sites."""

    name: str
    site_data: dict[str, Path]  # site -> its field-sample .npz (read only by that site)
    initial: mlp.Params  # the deployed model's [W1, b1, W2, b2]
    classes: int
    since: float | None = None  # only rows seen at or after this wall-clock time
    rounds: int = 3
    local_epochs: int = 5
    learning_rate: float = 0.1
    batch_size: int = 32
    min_sites: int | None = None  # default: half the sites, at least two
    round_timeout_s: float = 30.0
    seed: int = 0  # the sites' train/held-out split and their shuffling

    def problems(self) -> list[str]:
        """Why this job cannot run, one sentence each (empty: it can)."""
        found = []
        # One drifted site is a fine-tune too: it runs where the data is, on the same path
        # (its rows still never leave), and more sites join when they drift alike.
        if not self.site_data:
            found.append("a federated fine-tune needs at least 1 site, got none")
        if len(self.initial) != 4:
            found.append(f"initial must be [W1, b1, W2, b2], got {len(self.initial)} arrays")
        elif mlp.shape_of(self.initial).classes != self.classes:
            found.append(
                f"the initial model has {mlp.shape_of(self.initial).classes} outputs, "
                f"the job says {self.classes} classes"
            )
        if self.min_sites is not None and not 1 <= self.min_sites <= len(self.site_data):
            found.append(f"min_sites {self.min_sites} is not between 1 and the sites' number")
        if self.rounds < 1 or self.local_epochs < 1 or self.batch_size < 1:
            found.append("rounds, local_epochs and batch_size must be 1 or more")
        if not self.learning_rate > 0:
            found.append(f"learning_rate must be positive, got {self.learning_rate}")
        return found


def run_field_federation(job: FieldJob, options: RunOptions) -> RunResult:
    """Fine-tune `job.initial` across the sites on Flower's Deployment Engine; returns once
    the run ends or fails (`RunResult.ok`, `.reason`, `.params()`, `.final_evaluation`)."""
    problems = job.problems()
    if problems:
        raise ValueError(f"field job {job.name}: " + "; ".join(problems))
    run_dir = options.run_dir.resolve()
    (run_dir / "cloud").mkdir(parents=True, exist_ok=True)
    initial = mlp.save_params(run_dir / "cloud" / INITIAL_MODEL, job.initial)
    shape = mlp.shape_of(job.initial)
    sites = list(job.site_data)
    site_dirs: dict[str, Path] = {}
    node_config: dict[str, NodeConfig] = {}
    for site, path in job.site_data.items():
        # the directory holds the site's Flower state and logs; its data stays where it is
        site_dirs[site] = run_dir / "sites" / site_dirname(site)
        site_dirs[site].mkdir(parents=True, exist_ok=True)
        entry: NodeConfig = {"field-data": str(Path(path).resolve()), "field-seed": job.seed}
        if job.since is not None:
            entry["field-since"] = float(job.since)
        node_config[site] = entry
    settings = RunSettings(
        job=job.name,
        strategy="fedavg",
        rounds=job.rounds,
        sites=sites,
        min_sites=job.min_sites if job.min_sites is not None else default_min_sites(len(sites)),
        round_timeout=job.round_timeout_s,
        dataset="field",
        features=shape.features,
        classes=shape.classes,
        hidden_units=shape.hidden,
        local_epochs=job.local_epochs,
        learning_rate=job.learning_rate,
        batch_size=job.batch_size,
        proximal_mu=0.0,
        trim_fraction=0.0,
        byzantine_sites=0,
        seed=job.seed,
        run_dir=str(run_dir),
        capture_messages=options.capture_messages,
        initial_model=str(initial),
    )
    return run_settings(settings, site_dirs, options, node_config)
