"""The field sample: the newest labelled rows per feature, kept on the site's disk."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tierwise.edge.field_sample import (
    FieldRing,
    FieldRows,
    FieldSample,
    FieldSampleError,
    load_field_sample,
    write_field_sample,
)

from .mqtt_support import closed_cloud, install_agent
from .support import FEATURE, AgentProcess, digits


def _rows(start: int, n: int, width: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose every value is their number: row i is [i, i, i], label i % 10."""
    ids = np.arange(start, start + n)
    return np.repeat(ids[:, None], width, axis=1).astype(np.float32), ids % 10


def test_the_ring_keeps_the_newest_rows_oldest_first_across_wraps() -> None:
    ring = FieldRing(capacity=5, width=3)
    for start, n in [(0, 2), (2, 1), (3, 3), (6, 1)]:  # the third wraps around
        x, y = _rows(start, n)
        ring.add(x, y, float(start))
    rows = ring.rows()
    assert len(ring) == 5
    assert rows.x[:, 0].tolist() == [2, 3, 4, 5, 6]
    assert rows.y.tolist() == [2, 3, 4, 5, 6]
    assert rows.t.tolist() == [2.0, 3.0, 3.0, 3.0, 6.0]  # each row keeps its request's time
    x, y = _rows(100, 12)  # more than fits: only the newest 5
    ring.add(x, y, 9.0)
    assert ring.rows().x[:, 0].tolist() == [107, 108, 109, 110, 111]


def test_rows_are_a_copy_not_a_view_the_next_request_overwrites() -> None:
    ring = FieldRing(capacity=2, width=3)
    ring.add(*_rows(0, 2), 0.0)
    before = ring.rows()
    ring.add(*_rows(2, 2), 1.0)
    assert before.x[:, 0].tolist() == [0, 1]


def test_a_file_round_trip_keeps_rows_dtypes_and_order(tmp_path: Path) -> None:
    sample = FieldSample(tmp_path / "field", capacity=4)
    x, y = _rows(0, 6)
    sample.add("digits", x[:3], y[:3], 10.0, classes=10)
    sample.add("digits", x[3:], y[3:], 11.0, classes=10)
    [write] = sample.due(now=0.0)
    path = write.path
    write_field_sample(path, write.rows)
    sample.saved(write)
    assert not sample.rings["digits"].dirty
    assert path == tmp_path / "field" / "digits.npz"
    assert not list(path.parent.glob("*.tmp"))
    back = load_field_sample(path)
    assert (back.x.dtype, back.y.dtype, back.t.dtype) == (np.float32, np.int64, np.float64)
    assert back.x[:, 0].tolist() == [2, 3, 4, 5]
    assert back.t.tolist() == [10.0, 11.0, 11.0, 11.0]
    with np.load(path) as npz:
        assert sorted(npz.files) == ["t", "x", "y"]

    restarted = FieldSample(tmp_path / "field", capacity=3)  # a smaller ring: the newest 3
    restarted.load()
    assert restarted.counts() == {"digits": 3}
    assert restarted.rings["digits"].rows().x[:, 0].tolist() == [3, 4, 5]
    assert restarted.due(now=100.0) == []  # nothing new to write
    restarted.add("digits", *_rows(6, 1), 12.0, classes=10)
    assert restarted.rings["digits"].rows().x[:, 0].tolist() == [4, 5, 6]


def test_writes_are_due_every_5_s_or_at_stop_and_only_for_what_changed() -> None:
    sample = FieldSample(Path("unused"), capacity=8)

    failing = {"a": 1}  # a's write of its third row fails once

    def due(now: float, final: bool = False) -> list[str]:
        """What is due, each write then confirmed unless it failed."""
        writes = sample.due(now, final)
        for write in writes:
            if write.written == 3 and failing.get(write.feature, 0) > 0:
                failing[write.feature] -= 1
            else:
                sample.saved(write)
        return [w.path.name for w in writes]

    sample.add("a", *_rows(0, 1), 0.0, classes=10)
    assert due(now=100.0) == ["a.npz"]
    sample.add("b", *_rows(1, 1), 0.0, classes=10)
    assert due(now=103.0) == []  # 3 s after the last write
    assert due(now=105.0) == ["b.npz"]  # "a" did not change
    sample.add("a", *_rows(2, 2), 0.0, classes=10)
    assert due(now=106.0, final=True) == ["a.npz"]  # failed: not confirmed
    assert due(now=120.0) == ["a.npz"]  # so written again
    assert due(now=130.0) == []


def test_rows_that_come_while_a_copy_is_written_are_written_next_time() -> None:
    sample = FieldSample(Path("unused"), capacity=8)
    sample.add("a", *_rows(0, 1), 0.0, classes=10)
    [write] = sample.due(now=0.0)
    sample.add("a", *_rows(1, 1), 0.0, classes=10)  # after the copy, before the write ends
    sample.saved(write)
    assert [w.rows.x[:, 0].tolist() for w in sample.due(now=10.0)] == [[0, 1]]


def test_labels_outside_the_models_classes_and_unsafe_names_are_not_kept() -> None:
    sample = FieldSample(Path("unused"), capacity=8)
    x, _ = _rows(0, 4)
    sample.add("digits", x, np.array([0, 9, 10, -1]), 0.0, classes=10)
    assert sample.rings["digits"].rows().y.tolist() == [0, 9]
    sample.add("../escape", x, np.array([1, 2, 3, 4]), 0.0, classes=10)
    assert "../escape" not in sample.rings


def test_zero_rows_turns_the_sample_off(tmp_path: Path) -> None:
    sample = FieldSample(tmp_path, capacity=0)
    sample.add("digits", *_rows(0, 3), 0.0, classes=10)
    assert sample.counts() == {}
    assert sample.due(now=0.0, final=True) == []


def test_new_input_width_starts_the_ring_over() -> None:
    sample = FieldSample(Path("unused"), capacity=8)
    sample.add("digits", *_rows(0, 3, width=3), 0.0, classes=10)
    sample.add("digits", *_rows(3, 2, width=4), 1.0, classes=10)
    assert sample.rings["digits"].rows().x.shape == (2, 4)


def _write(path: Path, **arrays: np.ndarray) -> Path:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


GOOD = {
    "x": np.zeros((2, 3), np.float32),
    "y": np.zeros(2, np.int64),
    "t": np.zeros(2, np.float64),
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"x": None}, "no x"),
        ({"y": np.zeros(2, np.int32)}, "y is int32, expected int64"),
        ({"x": np.zeros(6, np.float32)}, "x has shape (6,)"),
        ({"t": np.zeros(3, np.float64)}, "must both be (2,)"),
        ({"x": np.full((2, 3), np.nan, np.float32)}, "x holds non-finite"),
        ({"y": np.array([0, -3])}, "negative class"),
    ],
)
def test_a_bad_file_names_the_file_and_the_field(
    tmp_path: Path, change: dict[str, np.ndarray | None], says: str
) -> None:
    arrays = {k: v for k, v in (GOOD | change).items() if v is not None}
    path = _write(tmp_path / "digits.npz", **arrays)
    with pytest.raises(FieldSampleError) as refused:
        load_field_sample(path)
    assert str(path) in str(refused.value)
    assert says in str(refused.value)


def test_a_file_that_is_no_npz_or_is_missing_says_so(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    path.write_bytes(b"half a file")
    with pytest.raises(FieldSampleError, match=r"not a readable \.npz"):
        load_field_sample(path)
    _write(path, **(GOOD | {"x": np.array([{"a": 1}], dtype=object)}))  # a pickle: never run
    with pytest.raises(FieldSampleError, match="not a readable"):
        load_field_sample(path)
    with pytest.raises(FieldSampleError, match="no such file"):
        load_field_sample(tmp_path / "other.npz")


def test_a_bad_file_at_start_is_kept_aside_and_the_sample_starts_empty(tmp_path: Path) -> None:
    (tmp_path / "digits.npz").write_bytes(b"torn")
    write_field_sample(tmp_path / "other.npz", FieldRows(**GOOD))
    sample = FieldSample(tmp_path, capacity=8)
    sample.load()
    assert sample.counts() == {"other": 2}
    assert (tmp_path / "digits.npz.bad").read_bytes() == b"torn"
    assert not (tmp_path / "digits.npz").exists()


def test_labelled_rows_posted_over_http_reach_the_file_while_serving_and_after_a_restart(
    tmp_path: Path,
) -> None:
    """A real agent process over loopback: the rows go to DATA_DIR/field/FEATURE.npz, which
    another process can read while the agent writes it; a restart serves the same sample."""
    data_dir, public = install_agent(tmp_path)
    args = ("--drain-timeout", "1", "--field-rows", "50")
    env = {"TIERWISE_EDGE_STATUS_INTERVAL_S": "0.2", "TIERWISE_EDGE_FIELD_SAVE_INTERVAL_S": "0.5"}
    agent = AgentProcess(closed_cloud(), data_dir, public, args, env=env)
    path = data_dir / "field" / f"{FEATURE}.npz"
    x, y = digits()
    agent.start()
    try:
        for i in range(0, 60, 4):  # 60 labelled rows; the ring keeps the newest 50
            body = {"inputs": x[i : i + 4].tolist(), "labels": y[i : i + 4].tolist()}
            posted = httpx.post(f"{agent.url}/v1/predict/{FEATURE}", json=body, timeout=10)
            assert posted.status_code == 200, posted.text
        unlabelled = {"inputs": x[100:103].tolist()}
        assert httpx.post(f"{agent.url}/v1/predict/{FEATURE}", json=unlabelled).status_code == 200
        state = agent.wait_for(
            "50 rows in its field sample",
            lambda s: s["learning"]["features"].get(FEATURE, {}).get("field_rows") == 50,
        )
        assert state["learning"]["field_rows_max"] == 50
        metrics = httpx.get(agent.url + "/metrics", timeout=5).text
        assert f'tierwise_edge_field_rows{{feature="{FEATURE}"}} 50' in metrics
        deadline = time.monotonic() + 30
        while not (path.exists() and len(load_field_sample(path)) == 50):  # written within ~0.5 s
            assert time.monotonic() < deadline, "the field sample was not written while serving"
            time.sleep(0.1)
    finally:
        assert agent.terminate() == 0
    sample = load_field_sample(path)
    np.testing.assert_array_equal(sample.x, x[10:60])
    assert sample.y.tolist() == y[10:60].tolist()

    agent.start()
    try:
        assert agent.state()["learning"]["features"][FEATURE]["field_rows"] == 50
    finally:
        assert agent.terminate() == 0
