"""The wire search the privacy tests rely on: it must find what it looks for."""

from __future__ import annotations

import numpy as np
import pytest
from tests.wire_search import assert_no_value_crossed, decimal_numbers, found, row_pairs


def test_numbers_are_read_from_text_but_not_from_a_clock_time() -> None:
    text = b'{"x":[0.9170446,-0.02693785]} flwr-timestamp: 2026-12-06T19:52:00.4585861 HTTP/1.1'
    assert decimal_numbers(text).tolist() == [-0.02693785, 0.9170446]
    row = np.array([[0.25, 0.917044, -0.02693785]], np.float32)
    assert found([b"xyz" + row[0, 1:].tobytes()], row_pairs(row), 8) == 1  # at any offset


def test_rows_written_as_text_are_found_and_a_few_chance_numbers_are_not() -> None:
    rng = np.random.default_rng(0)
    rows = rng.uniform(0.1, 0.9, (40, 8)).astype(np.float32)
    leak = ("[" + ",".join(repr(float(v)) for v in rows.ravel()) + "]").encode()
    with pytest.raises(AssertionError, match="crossed as text"):
        assert_no_value_crossed(rows, [leak], "leak")
    chance = b",".join(repr(float(v)).encode() for v in rows.ravel()[:5])  # a few numbers
    assert_no_value_crossed(rows, [chance], "chance")


def test_the_search_looks_inside_gzip_bodies() -> None:
    import gzip

    rows = np.random.default_rng(1).uniform(0.1, 0.9, (40, 8)).astype(np.float32)
    body = gzip.compress(("[" + ",".join(repr(float(v)) for v in rows.ravel()) + "]").encode())
    with pytest.raises(AssertionError, match="crossed as text"):
        assert_no_value_crossed(rows, [b"POST / HTTP/1.1\r\n\r\n" + body], "test")


def test_rows_sent_as_doubles_are_found_and_a_chance_double_or_two_are_not() -> None:
    rows = np.random.default_rng(2).uniform(0.1, 0.9, (40, 8)).astype(np.float32)
    doubles = rows.astype(np.float64)
    with pytest.raises(AssertionError, match="as float64 crossed"):
        assert_no_value_crossed(rows, [b"x" + doubles[:3].tobytes()], "leak")  # 24 values
    # two doubles that happen to equal inputs, as one of Flower's timings can (a multiple of 2^-22)
    assert_no_value_crossed(rows, [b"x" + doubles.ravel()[[5, 77]].tobytes()], "chance")
