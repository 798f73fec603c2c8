"""Evaluation data files: the optional router data (router_p, router_y) and its checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tierwise.errors import UsageError
from tierwise.package.evaldata import EvalData, load_eval_data, save_eval_data

X = np.linspace(0, 1, 12, dtype=np.float32).reshape(4, 3)
Y = np.array([0, 1, 2, 1])
ROUTER_P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], dtype=np.float32)
ROUTER_Y = np.array([0, 1, 1])


def _npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, x=X, y=Y, **arrays)
    return path


def test_router_data_round_trips_through_save_and_load(tmp_path: Path) -> None:
    data = EvalData(X, Y, X[:2], "eval.npz", router_p=ROUTER_P, router_y=ROUTER_Y)
    save_eval_data(tmp_path / "eval.npz", data)
    loaded = load_eval_data(tmp_path / "eval.npz")
    assert loaded.router_p is not None
    assert loaded.router_y is not None
    np.testing.assert_array_equal(loaded.router_p, ROUTER_P)
    np.testing.assert_array_equal(loaded.router_y, ROUTER_Y)
    assert loaded.router_p.dtype == np.float32
    np.testing.assert_array_equal(loaded.x, X)
    np.testing.assert_array_equal(loaded.y, Y)


def test_string_labels_round_trip_too(tmp_path: Path) -> None:
    labels = np.array(["cat", "dog", "cat"])
    data = EvalData(X, Y.astype(str), None, "e", router_p=ROUTER_P, router_y=labels)
    save_eval_data(tmp_path / "e.npz", data)
    loaded = load_eval_data(tmp_path / "e.npz")
    assert loaded.router_y is not None
    assert loaded.router_y.tolist() == ["cat", "dog", "cat"]


def test_without_router_data_there_is_none(tmp_path: Path) -> None:
    save_eval_data(tmp_path / "plain.npz", EvalData(X, Y, None, "plain.npz"))
    loaded = load_eval_data(tmp_path / "plain.npz")
    assert (loaded.router_p, loaded.router_y) == (None, None)
    with np.load(tmp_path / "plain.npz") as npz:
        assert sorted(npz.files) == ["x", "y"]


@pytest.mark.parametrize(
    ("arrays", "reason"),
    [
        ({"router_p": ROUTER_P}, "has router_p but not router_y (the router data needs both)"),
        ({"router_y": ROUTER_Y}, "has router_y but not router_p (the router data needs both)"),
    ],
)
def test_half_the_router_data_is_refused(tmp_path: Path, arrays: Any, reason: str) -> None:
    with pytest.raises(UsageError, match=re.escape(f"bad.npz: {reason}")):
        load_eval_data(_npz(tmp_path / "bad.npz", **arrays))


@pytest.mark.parametrize(
    ("router_p", "router_y", "reason"),
    [
        (
            ROUTER_P[0],
            ROUTER_Y[:1],
            r"router_p must be a non-empty \[N, features\] array, got \[3\]",
        ),
        (ROUTER_P[:0], ROUTER_Y[:0], r"router_p must be a non-empty \[N, features\] array"),
        (
            ROUTER_P,
            ROUTER_Y[:2],
            r"router_y must be one label per row of router_p \(3\), got \[2\]",
        ),
        (ROUTER_P, ROUTER_Y[:, None], r"router_y must be one label per row of router_p \(3\)"),
        (ROUTER_P * 2, ROUTER_Y, r"router_p must be class probabilities in \[0, 1\]"),
        (-ROUTER_P, ROUTER_Y, r"router_p must be class probabilities in \[0, 1\]"),
        (np.full((3, 3), np.nan), ROUTER_Y, "router_p contains NaN or infinity"),
        (np.full((3, 3), "a"), ROUTER_Y, "router_p must be numeric"),
    ],
)
def test_router_data_of_the_wrong_shape_or_kind_is_refused(
    tmp_path: Path, router_p: Any, router_y: Any, reason: str
) -> None:
    with pytest.raises(UsageError, match=reason):
        load_eval_data(_npz(tmp_path / "bad.npz", router_p=router_p, router_y=router_y))


ROUTER_X = np.arange(9, dtype=np.float32).reshape(3, 3)


def test_router_inputs_round_trip_beside_the_router_data(tmp_path: Path) -> None:
    data = EvalData(X, Y, None, "e", router_p=ROUTER_P, router_y=ROUTER_Y, router_x=ROUTER_X)
    save_eval_data(tmp_path / "e.npz", data)
    loaded = load_eval_data(tmp_path / "e.npz")
    assert loaded.router_x is not None
    np.testing.assert_array_equal(loaded.router_x, ROUTER_X)
    assert loaded.router_x.dtype == np.float32


def test_router_data_without_inputs_still_loads(tmp_path: Path) -> None:
    """Files written before router_x existed: the rules that need no inputs still learn."""
    loaded = load_eval_data(_npz(tmp_path / "old.npz", router_p=ROUTER_P, router_y=ROUTER_Y))
    assert loaded.router_p is not None
    assert loaded.router_x is None


@pytest.mark.parametrize(
    ("arrays", "reason"),
    [
        ({"router_x": ROUTER_X}, r"has router_x but not router_p and router_y"),
        (
            {"router_p": ROUTER_P, "router_y": ROUTER_Y, "router_x": ROUTER_X[:2]},
            r"router_x must be \[3, 3\] \(a row of x's width per row of router_p\), got \[2, 3\]",
        ),
        (
            {"router_p": ROUTER_P, "router_y": ROUTER_Y, "router_x": ROUTER_X[:, :2]},
            r"router_x must be \[3, 3\] .*, got \[3, 2\]",
        ),
        (
            {"router_p": ROUTER_P, "router_y": ROUTER_Y, "router_x": np.full((3, 3), np.inf)},
            "router_x contains NaN or infinity",
        ),
    ],
)
def test_router_inputs_not_matching_their_rows_are_refused(
    tmp_path: Path, arrays: Any, reason: str
) -> None:
    with pytest.raises(UsageError, match=reason):
        load_eval_data(_npz(tmp_path / "bad.npz", **arrays))


def test_saving_router_inputs_without_their_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="router_x needs router_p with one row per input row"):
        save_eval_data(tmp_path / "e.npz", EvalData(X, Y, None, "e", router_x=ROUTER_X))
