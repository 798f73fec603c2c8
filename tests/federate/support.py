"""What the federate tests share: a training job to vary and in-process reference rounds."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tierwise.federate import mlp
from tierwise.federate.client_app import training_seed
from tierwise.federate.runner import RunResult
from tierwise.federate.sitedata import Shard, load_shard, site_dirname
from tierwise.spec.federated import FederatedTraining
from tierwise.spec.model import TrainingJob

FAST = {"round_timeout": "20s", "hidden_units": 32}
T = TypeVar("T")


def side_by_side(runs: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Each call's result, the calls started together: independent federations (each with
    its own processes and ports) spend most of a run waiting, so one's waits overlap
    another's CPU. A call that raises fails the lot."""
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {name: pool.submit(run) for name, run in runs.items()}
        return {name: future.result() for name, future in futures.items()}


def job(rounds: int = 2, strategy: str = "fedavg", **federated: Any) -> TrainingJob:
    """A training job with test-sized settings; `federated` overrides the block's fields."""
    return digits_job(FederatedTraining(**(FAST | federated)), rounds, strategy)


def digits_job(
    federated: FederatedTraining,
    rounds: int,
    strategy: str,
    name: str = "digits-across-sites",
) -> TrainingJob:
    """The digits MLP trained where its rows live (they may not leave the site), weekly.

    benchmarks/federated.py runs its jobs through this too.
    """
    return TrainingJob(
        name=name,
        model="digits-mlp",
        data_per_site="1GB",
        raw_data_may_reach="site",
        cadence="7d",
        rounds=rounds,
        strategy=strategy,
        federated=federated,
    )


def shards(result: RunResult) -> dict[str, Shard]:
    """The sites' data, read by the test (playing auditor), never by the cloud side."""
    root = result.run_dir / "sites"
    return {s: load_shard(root / site_dirname(s)) for s in result.settings.sites}


def reference_round(
    result: RunResult, start: mlp.Params, server_round: int, sites: list[str]
) -> mlp.Params:
    """FedAvg of one round computed in this process: what Flower must have produced."""
    s = result.settings
    data = shards(result)
    updates, weights = [], []
    for site in sites:
        shard = data[site]
        new, _ = mlp.train(
            start,
            shard.x_train,
            shard.y_train,
            epochs=s.local_epochs,
            learning_rate=s.learning_rate,
            batch_size=s.batch_size,
            seed=training_seed(s.seed, server_round, site),
        )
        updates.append(new)
        weights.append(len(shard.y_train))
    share = np.asarray(weights, np.float64) / sum(weights)
    return [
        sum(w * u[i].astype(np.float64) for w, u in zip(share, updates, strict=True)).astype(
            np.float32
        )
        for i in range(len(start))
    ]


def initial(result: RunResult) -> mlp.Params:
    s = result.settings
    return mlp.init_params(mlp.MlpShape(s.features, s.hidden_units, s.classes), s.seed)


def max_abs_diff(a: mlp.Params, b: mlp.Params) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def site_rows(result: RunResult) -> np.ndarray[Any, np.dtype[np.float32]]:
    data = shards(result).values()
    return np.concatenate([np.concatenate([d.x_train, d.x_test]) for d in data])


def run_dir(tmp_path: Path, name: str) -> Path:
    return tmp_path / name


def cli_federate(*args: str) -> int:
    """Run `tierwise federate ARGS` through the real entry point; the exit code."""
    import sys

    from tierwise.cli import main

    argv = sys.argv
    sys.argv = ["tierwise", "federate", *args]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = argv
    return 0


def write_field(path: Path, x: Any, y: Any, t: Any) -> Path:
    """A field-sample file as an edge agent keeps it (tierwise.field_file), from any arrays."""
    from tierwise.field_file import FieldRows, write_field_sample

    rows = FieldRows(np.asarray(x, np.float32), np.asarray(y, np.int64), np.asarray(t, np.float64))
    write_field_sample(path, rows)
    return path
