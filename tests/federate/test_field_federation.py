"""The learning loop's federated retraining, for real: two sites fine-tune the factory edge model
on their own drifted field rows through Flower, each across its own WAN proxy, and every byte
on those wires is searched for the sites' input values.

The drift is `tierwise up --shift`'s sensor-gain change (x' = 1.3 x, up/shift.py) on the
factory scenario's test rows; the model is the edge model the scenario trains, folded into
mlp.Params. Each site's field file also holds unshifted rows from before the drift (the
scenario's eval rows), which `since` must leave out.
"""

from __future__ import annotations

import struct
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from tests.wire_search import assert_no_value_crossed

from tierwise.federate import mlp
from tierwise.federate.field import FieldJob, run_field_federation
from tierwise.federate.fieldsamples import field_shard
from tierwise.federate.from_sklearn import params_from_sklearn
from tierwise.federate.runner import RunOptions, RunResult
from tierwise.rules.drift import confidence_counts
from tierwise.scenarios import get_scenario
from tierwise.up.shift import shifted
from tierwise.wan import WanConditions, read_streams

from .support import side_by_side, write_field

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
SITES = ["plant-north", "plant-south"]
GAIN = {"gain": 1.3, "offset": 0.0, "noise": 0.0}
DRIFT_AT = 1_800_000_000.0  # wall-clock seconds: rows before it are the pre-drift field


@dataclass(frozen=True)
class Field:
    """The test's view of the world: the deployed model and what each site holds."""

    model: Any
    classes: NDArray[Any]
    x_test: NDArray[np.float32]
    y_test: NDArray[np.int64]
    files: dict[str, Path]


def _deployed_factory_model() -> tuple[Any, Any]:
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    scenario = get_scenario("factory")
    splits = scenario.splits
    # what Scenario.train does for the edge model (the SVM cloud model is not needed here)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.filterwarnings("ignore", message=".*(converge|Maximum iterations).*")
        model = scenario.edge_model().fit(splits.x_train, splits.y_train)
    return model, splits


def _field(tmp_path: Path) -> Field:
    model, s = _deployed_factory_model()
    classes = model.classes_
    y_test = np.searchsorted(classes, s.y_test).astype(np.int64)
    y_eval = np.searchsorted(classes, s.y_eval).astype(np.int64)
    after = shifted(s.x_test, GAIN, seed=0)  # the drifted stream: the test rows, gain 1.3
    rng = np.random.default_rng(7)
    drifted = np.array_split(rng.permutation(len(y_test)), len(SITES))
    before = np.array_split(rng.permutation(len(y_eval))[:400], len(SITES))
    files = {}
    for site, rows, old in zip(SITES, drifted, before, strict=True):
        x = np.concatenate([s.x_eval[old], after[rows]])
        y = np.concatenate([y_eval[old], y_test[rows]])
        t = np.concatenate(
            [DRIFT_AT - 1 - np.arange(len(old))[::-1], DRIFT_AT + np.arange(len(rows), dtype=float)]
        )
        files[site] = write_field(tmp_path / "agents" / site / "field.npz", x, y, t)
    return Field(model, classes, s.x_test, y_test, files)


@dataclass(frozen=True)
class FineTune:
    field: Field
    job: FieldJob
    initial: mlp.Params
    result: RunResult
    seconds: float


def _fine_tune(tmp_path: Path) -> FineTune:
    field = _field(tmp_path)
    initial = params_from_sklearn(field.model)
    job = FieldJob(
        name="factory-refit",
        site_data=field.files,
        initial=initial,
        classes=len(field.classes),
        since=DRIFT_AT,
    )
    options = RunOptions(
        run_dir=tmp_path / "run",
        wan={site: WanConditions(rtt_p50_s=0.002, rtt_p99_s=0.01) for site in SITES},
        wan_capture=True,
    )
    started = time.monotonic()
    result = run_field_federation(job, options)
    return FineTune(field, job, initial, result, time.monotonic() - started)


def _too_small(tmp_path: Path) -> tuple[dict[str, Path], RunResult]:
    rng = np.random.default_rng(0)
    files = {
        site: write_field(
            tmp_path / f"{site}.npz", rng.normal(size=(n, 4)), rng.integers(0, 3, n), np.arange(n)
        )
        for site, n in (("plant-north", 60), ("plant-south", 3))
    }
    initial = mlp.init_params(mlp.MlpShape(features=4, hidden=5, classes=3), seed=0)
    job = FieldJob(name="too-small", site_data=files, initial=initial, classes=3, rounds=1)
    return files, run_field_federation(job, RunOptions(run_dir=tmp_path / "run"))


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[FineTune, tuple[dict[str, Path], RunResult]]:
    """This file's two federations, started together (each with its own processes): the
    fine-tune, and a run one of whose sites holds too few rows."""
    tuned, small = tmp_path_factory.mktemp("fine-tune"), tmp_path_factory.mktemp("too-small")
    both = side_by_side({"tuned": lambda: _fine_tune(tuned), "small": lambda: _too_small(small)})
    return both["tuned"], both["small"]


def test_federated_fine_tune_recovers_from_a_gain_drift_and_no_input_value_crosses_the_wan(
    runs: tuple[FineTune, tuple[dict[str, Path], RunResult]],
) -> None:
    tuned = runs[0]
    field, job, initial, result, seconds = (
        tuned.field, tuned.job, tuned.initial, tuned.result, tuned.seconds
    )  # fmt: skip
    assert result.ok, result.reason

    # 1. the numbers: the deployed model before the drift, on the drift, after the fine-tune
    before = float(field.model.score(field.x_test, field.classes[field.y_test]))
    start, final = result.initial_evaluation, result.final_evaluation
    assert start is not None
    assert final is not None
    print(
        f"\nfactory edge model, accuracy: unshifted test rows {before:.3f}; held-out rows "
        f"after gain 1.3: deployed {start.accuracy:.3f}, federated fine-tune {final.accuracy:.3f} "
        f"({job.rounds} rounds x {job.local_epochs} local epochs, lr {job.learning_rate}, "
        f"{final.examples} held-out rows, {seconds:.1f}s)"
    )
    assert start.accuracy < before - 0.05  # the drift hurts
    assert final.accuracy >= before - 0.015  # and the fine-tune recovers (~1 point)

    # 2. what the federation reported is what the sites' own rows say (the test as auditor)
    held_x, held_y = _held_out(field.files, job)
    assert final.examples == len(held_y)  # rows from before `since` were left out
    assert final.accuracy == pytest.approx(mlp.evaluate(result.params(), held_x, held_y).accuracy)
    proba = mlp.predict_proba(result.params(), held_x)
    assert final.confidence_counts == tuple(confidence_counts(proba.max(axis=1)))
    assert all(isinstance(c, int) for c in final.confidence_counts)

    # 3. the wire: every byte each site's proxy forwarded, searched for its input values
    for site in SITES:
        _assert_no_input_value_on_the_wire(result, site, field.files[site], initial)


def test_a_site_whose_field_file_is_too_small_fails_the_run_saying_which_and_why(
    runs: tuple[FineTune, tuple[dict[str, Path], RunResult]],
) -> None:
    files, result = runs[1]
    assert not result.ok
    assert result.reason.startswith("only 1 of 2 sites connected")
    assert f"site plant-south: {files['plant-south']} holds 3 rows" in result.reason


def test_a_job_that_cannot_run_is_refused_before_anything_starts(tmp_path: Path) -> None:
    initial = mlp.init_params(mlp.MlpShape(features=4, hidden=5, classes=3), seed=0)
    job = FieldJob(name="no-site", site_data={}, initial=initial, classes=5)
    with pytest.raises(ValueError, match=r"at least 1 site, got none.*3 outputs, the job says 5"):
        run_field_federation(job, RunOptions(run_dir=tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def _held_out(files: dict[str, Path], job: FieldJob) -> tuple[NDArray[np.float32], NDArray[Any]]:
    shards = [field_shard(files[s], s, since=job.since, seed=job.seed) for s in SITES]
    return np.concatenate([d.x_test for d in shards]), np.concatenate([d.y_test for d in shards])


def _assert_no_input_value_on_the_wire(
    result: RunResult, site: str, field_file: Path, initial: mlp.Params
) -> None:
    """No input value of the site's rows (also those before `since`) is in any byte its WAN
    proxy forwarded (tests/wire_search.py says how it searches); and the search does see
    what crosses: the initial model went down, a float64 metric came up."""
    with np.load(field_file) as data:
        x = data["x"].astype(np.float32)
    streams = read_streams(result.wan_capture(site))
    assert streams, f"nothing crossed {site}'s WAN proxy"
    print(assert_no_value_crossed(x, list(streams.values()), site))
    down = b"".join(v for (_, way), v in streams.items() if way == "down")
    up = b"".join(v for (_, way), v in streams.items() if way == "up")
    assert mlp.flatten(initial).tobytes() in down
    loss = result.rounds[-1]["sites"][site]["eval_loss"]
    assert struct.pack("<d", loss) in up
