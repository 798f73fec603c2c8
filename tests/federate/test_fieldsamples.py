"""A site's field-sample file: checked on load, cut at `since`, split the same way every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tierwise.federate.fieldsamples import field_shard
from tierwise.field_file import FieldSampleError

from .support import write_field


def _sample(tmp_path: Path, n: int = 100) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = rng.integers(0, 4, n)
    t = 1000.0 + np.arange(n)
    return write_field(tmp_path / "field.npz", x, y, t)


def test_rows_since_a_time_are_split_the_same_way_every_time(tmp_path: Path) -> None:
    path = _sample(tmp_path)
    shard = field_shard(path, "plant-a", since=1050.0, seed=3)
    assert len(shard.y_train) + len(shard.y_test) == 50
    assert len(shard.y_test) == 15  # 30% held out
    with np.load(path) as data:
        later = {r.tobytes() for r in data["x"][50:].astype(np.float32)}
    got = {r.tobytes() for r in np.concatenate([shard.x_train, shard.x_test])}
    assert got == later  # exactly the rows seen at or after `since`, each once
    again = field_shard(path, "plant-a", since=1050.0, seed=3)
    assert np.array_equal(again.x_test, shard.x_test)
    other = field_shard(path, "plant-b", since=1050.0, seed=3)
    assert not np.array_equal(other.x_test, shard.x_test)  # sites do not split alike
    assert shard.x_train.dtype == np.float32
    assert shard.y_train.dtype == np.int64


def test_too_few_rows_since_the_cut_are_refused_naming_the_site(tmp_path: Path) -> None:
    path = _sample(tmp_path)
    with pytest.raises(FieldSampleError, match=r"site plant-a: .* holds 5 rows seen since"):
        field_shard(path, "plant-a", since=1095.0)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    # the file checks themselves: tests/edge/test_field_sample.py (tierwise.field_file)
    with pytest.raises(FieldSampleError, match="no such file"):
        field_shard(tmp_path / "absent.npz", "plant-a")


def test_a_sites_clientapp_reads_its_field_file_and_refuses_one_the_model_cannot_take(
    tmp_path: Path,
) -> None:
    from flwr.app import Context, RecordDict

    from tierwise.federate.client_app import fitting_shard
    from tierwise.federate.mlp import MlpShape

    path = _sample(tmp_path)  # 3 columns, classes 0..3
    config = {"site": "plant-a", "data-dir": str(tmp_path), "field-data": str(path)}
    context = Context(
        run_id=1,
        node_id=1,
        node_config={**config, "field-since": 1090.0, "field-seed": 3},
        state=RecordDict(),
        run_config={},
    )
    shard = fitting_shard(context, MlpShape(features=3, hidden=4, classes=4))
    expected = field_shard(path, "plant-a", since=1090.0, seed=3)
    assert np.array_equal(shard.x_test, expected.x_test)
    with pytest.raises(ValueError, match="site plant-a: rows have 3 columns, the model takes 5"):
        fitting_shard(context, MlpShape(features=5, hidden=4, classes=4))
    with pytest.raises(ValueError, match="site plant-a: class index 3 but the model has 2 classes"):
        fitting_shard(context, MlpShape(features=3, hidden=4, classes=2))
