"""The learning loop's federated retraining, for real: two sites fine-tune the factory edge model
on their own drifted field rows through Flower, each across its own WAN proxy, and every byte
on those wires is searched for the sites' input values.

The drift is `tierwise up --shift`'s sensor-gain change (x' = 1.3 x, up/shift.py) on the
factory scenario's test rows; the model is the edge model the scenario trains, folded into
mlp.Params. Each site's field file also holds unshifted rows from before the drift (the
scenario's eval rows), which `since` must leave out.
"""

from __future__ import annotations

import re
import struct
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tierwise.federate import mlp
from tierwise.federate.field import FieldJob, run_field_federation
from tierwise.federate.fieldsamples import field_shard
from tierwise.federate.from_sklearn import params_from_sklearn
from tierwise.federate.runner import RunOptions, RunResult
from tierwise.rules.drift import confidence_counts
from tierwise.scenarios import get_scenario
from tierwise.up.shift import shifted
from tierwise.wan import WanConditions, read_streams

from .support import write_field

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


def test_federated_fine_tune_recovers_from_a_gain_drift_and_no_input_value_crosses_the_wan(
    tmp_path: Path,
) -> None:
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
    seconds = time.monotonic() - started
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
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    files = {
        site: write_field(
            tmp_path / f"{site}.npz", rng.normal(size=(n, 4)), rng.integers(0, 3, n), np.arange(n)
        )
        for site, n in (("plant-north", 60), ("plant-south", 3))
    }
    initial = mlp.init_params(mlp.MlpShape(features=4, hidden=5, classes=3), seed=0)
    job = FieldJob(name="too-small", site_data=files, initial=initial, classes=3, rounds=1)
    result = run_field_federation(job, RunOptions(run_dir=tmp_path / "run"))
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
    """No input value of the site's rows is in any byte its WAN proxy forwarded.

    The search, for every value v of the site's x (all rows, also those before `since`),
    except values that are not distinctive — tiny (|v| < 1e-3) or short decimals (4
    significant digits or fewer, e.g. 0.0, 0.5, 1.25), which any traffic holds by chance:
    - v as float64 (8 bytes, little-endian) at every byte offset of each direction's
      stream: a value a site sends as a metric or a double array;
    - v as decimal text: any number written in the traffic (JSON, a log line) that equals
      v to 5 significant digits, however many digits it was printed with;
    - every two neighbouring values of a row as float32 (8 bytes), at every offset: a row,
      or any run of it, sent as a float32 array (the model's own dtype);
    - v alone as float32 (4 bytes). Four bytes are too short to be distinctive in this much
      traffic: it carries thousands of float32 model weights of the same magnitude, so some
      4-byte patterns match by chance. The check is therefore comparative: the values must
      not be found more often than their float32 neighbours one ulp up, which no site ever
      had (a leak of the rows would find ~every value).
    The same search finds the float32 bytes of the model sent down, and a float64 metric
    the site sent up, so it does see what crosses (the wire is not compressed or encoded).
    """
    with np.load(field_file) as data:
        x = data["x"].astype(np.float32)
    values = x.ravel()
    short = np.array([np.float32(f"{v:.4g}") == v for v in values])
    distinctive = values[(np.abs(values) >= 1e-3) & ~short]
    streams = read_streams(result.wan_capture(site))
    assert streams, f"nothing crossed {site}'s WAN proxy"
    wire = list(streams.values())
    total = sum(len(w) for w in wire)

    f64 = np.unique(distinctive.astype(np.float64).view(np.uint64))
    assert _found(wire, f64, 8) == 0, f"{site}: an input value as float64 crossed the WAN"
    assert _found(wire, _row_pairs(x), 8) == 0, f"{site}: float32 row data crossed the WAN"
    numbers = _decimal_numbers(b"\0".join(wire))
    as_text = _near_any(distinctive.astype(np.float64), numbers)
    assert not as_text.any(), f"{site}: {distinctive[as_text][:3]} crossed as text"
    f32 = np.unique(distinctive.view(np.uint32))
    ulp_up = np.unique(np.nextafter(distinctive, np.float32(np.inf)).view(np.uint32))
    chance = _found(wire, np.setdiff1d(ulp_up, f32), 4)
    hits = _found(wire, f32, 4)
    print(
        f"{site}: {total} bytes crossed, {len(numbers)} decimal numbers in text; float32 "
        f"4-byte matches {hits} (one ulp up: {chance})"
    )
    assert hits <= 3 * chance + 10, f"{site}: input values as float32 crossed the WAN"

    # the search sees what crosses: the initial model went down, a float64 metric came up
    down = b"".join(v for (_, way), v in streams.items() if way == "down")
    up = b"".join(v for (_, way), v in streams.items() if way == "up")
    assert mlp.flatten(initial).tobytes() in down
    loss = result.rounds[-1]["sites"][site]["eval_loss"]
    assert struct.pack("<d", loss) in up


def _row_pairs(x: NDArray[np.float32]) -> NDArray[np.uint64]:
    """x[i, j] and x[i, j + 1] as float32, side by side: the 8 bytes of a row's run."""
    bits = x.view(np.uint32).astype(np.uint64)
    return np.unique(bits[:, :-1] | (bits[:, 1:] << np.uint64(32)))


def _decimal_numbers(blob: bytes) -> NDArray[np.float64]:
    """Every number written as decimal text with 5 or more significant digits, sorted.

    A number as JSON, Python or C print it: an optional sign, `0` or digits not starting
    with 0, a point, digits; not inside a longer run of digits. So "0.45858" in an HTTP
    header's time "19:52:00.458586" (seconds with a leading zero) is not a number, and
    "1.1" in "HTTP/1.1" is too short to tell anything.
    """
    found = re.findall(rb"(?<![0-9.])-?(?:0|[1-9][0-9]*)\.[0-9]+", blob)
    digits = [t.lstrip(b"-").replace(b".", b"").lstrip(b"0") for t in found]
    return np.sort([float(t) for t, d in zip(found, digits, strict=True) if len(d) >= 5])


def _near_any(values: NDArray[np.float64], numbers: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which values some number equals to 5 significant digits (rounded or cut off)."""
    unit = 10.0 ** (np.floor(np.log10(np.abs(values))) - 4)  # one in the 5th digit
    lo = np.searchsorted(numbers, values - unit, side="left")
    hi = np.searchsorted(numbers, values + unit, side="right")
    return np.asarray(hi > lo)


def _found(streams: list[bytes], patterns: NDArray[Any], width: int) -> int:
    """How many `width`-byte windows (at any offset) of the streams are in `patterns`."""
    dtype = np.uint64 if width == 8 else np.uint32
    found = 0
    for stream in streams:
        raw = np.frombuffer(stream, np.uint8)
        for offset in range(width):
            usable = (len(raw) - offset) // width * width
            if usable <= 0:
                continue
            windows = raw[offset : offset + usable].view(dtype)
            found += int(np.isin(windows, patterns).sum())
    return found


def test_the_wire_search_finds_a_number_in_text_but_not_in_a_clock_time() -> None:
    values = np.array([0.9170446395874023, -0.026937853, 0.4585861], np.float64)
    text = b'{"x":[0.91704,-0.0269378]} flwr-timestamp: 2026-12-06T19:52:00.458586 HTTP/1.1'
    assert _near_any(values, _decimal_numbers(text)).tolist() == [True, True, False]
    row = np.array([[0.25, 0.917044, -0.02693785]], np.float32)
    assert _found([b"xyz" + row[0, 1:].tobytes()], _row_pairs(row), 8) == 1  # at any offset
