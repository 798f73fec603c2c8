"""Feedback windows and their filter: counts of a feature's stream, and nothing raw unless the
spec lets raw inputs reach the cloud."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from tests.edge.support import _drift, digits

from tierwise.edge.feedback import (
    EARLY_ROWS,
    QUIET_REPORT_S,
    REPORT_ROWS,
    FeedbackBook,
    FeedbackPolicy,
    FeedbackWindow,
)
from tierwise.package.manifest import DriftReference


def _window(max_examples: int = 0) -> FeedbackWindow:
    return FeedbackWindow("digits", "digits-edge", 1, "fp32", _drift(20), max_examples)


def _numbers(value: Any) -> list[Any]:
    """Every number anywhere in a JSON value."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


def _feed(window: FeedbackWindow, start: int, n: int, labelled: bool = False) -> np.ndarray:
    """`n` digits from `start` with made-up edge probabilities; the cloud answers the hard
    rows one class off the truth, so a sample's cloud label and true label differ."""
    x, y = digits()[0][start : start + n], digits()[1][start : start + n]
    p = np.random.default_rng(start).dirichlet(np.ones(10), size=n)
    hard = p.max(axis=1) < 0.3
    cloud = [(int(v) + 1) % 10 for v in y[hard]]
    truth = [int(v) for v in y] if labelled else None
    window.add(x, p, hard, cloud, p.argmax(axis=1).tolist(), truth)
    return x


def test_a_summary_is_counts_only_and_says_no_raw_value() -> None:
    window = _window()
    x = _feed(window, 1200, 200)
    body = FeedbackPolicy(raw_may_leave=False).report(window)
    assert body["rows"] == 200
    assert all(sum(column) == 200 for column in body["inputs"])
    assert sum(body["confidence"]) == 200
    assert "examples" not in body
    assert body["raw"] is False
    numbers = _numbers(json.loads(json.dumps(body)))
    assert all(isinstance(n, int) for n in numbers), "a summary holds counts, never a value"
    values = {float(v) for v in x.ravel() if v not in (0.0, 1.0)}  # 0 and 1 are counts too
    assert not values & {float(n) for n in numbers}


def test_a_summary_says_nothing_of_the_devices_labels() -> None:
    """A true label is site data too: where raw data may not leave, a labelled stream's
    summary is byte for byte the unlabelled one's."""
    plain, labelled = _window(), _window()
    _feed(plain, 1200, 200)
    _feed(labelled, 1200, 200, labelled=True)
    policy = FeedbackPolicy(raw_may_leave=False)
    assert json.dumps(policy.report(labelled)) == json.dumps(policy.report(plain))
    assert labelled.examples == []  # nothing kept that could leave later


def test_hard_rows_the_cloud_answered_are_counted_and_sampled_only_where_raw_may_leave() -> None:
    window = _window(max_examples=8)
    _feed(window, 0, 400)
    assert window.hard_rows == window.cloud_answered > 8
    assert 0 <= window.cloud_agreed <= window.cloud_answered
    body = FeedbackPolicy(raw_may_leave=True, max_examples=8).report(window)
    assert len(body["examples"]) == 8  # a uniform sample, bounded
    assert all(len(e["inputs"]) == 64 for e in body["examples"])
    assert all(e["label"] is None for e in body["examples"])  # the device sent none


def test_an_example_carries_the_devices_label_beside_the_clouds_where_raw_may_leave() -> None:
    window = _window(max_examples=8)
    x = _feed(window, 0, 400, labelled=True)
    body = FeedbackPolicy(raw_may_leave=True, max_examples=8).report(window)
    labels = digits()[1][:400]
    truth = {tuple(row): int(label) for row, label in zip(x.tolist(), labels, strict=True)}
    assert len(body["examples"]) == 8
    for example in body["examples"]:
        label = truth[tuple(np.float32(v) for v in example["inputs"])]
        assert example["label"] == label  # the row's own truth
        # what the cloud said of it, where it was hard (labelled easy rows are offered too)
        assert example["cloud_label"] in ((label + 1) % 10, None)


def test_where_raw_may_leave_labelled_easy_rows_are_examples_too() -> None:
    window = _window(max_examples=400)
    x, y = digits()
    p = np.full((20, 10), 0.1)
    window.add(x[:20], p, None, None, None, [int(v) for v in y[:20]])
    body = FeedbackPolicy(raw_may_leave=True, max_examples=400).report(window)
    assert [e["label"] for e in body["examples"]] == [int(v) for v in y[:20]]
    assert all(e["cloud_label"] is None for e in body["examples"])


def test_taking_a_report_starts_a_fresh_window() -> None:
    window = _window()
    _feed(window, 0, 50)
    assert window.take(FeedbackPolicy()) is not None
    assert window.take(FeedbackPolicy()) is None  # nothing since
    assert window.input_counts.sum() == 0


@dataclass
class _Served:
    """What the book reads of a served model (the agent passes its PackageAnswerer)."""

    version: int
    drift_reference: DriftReference | None
    name: str = "digits-edge"
    variant: str = "fp32"


def test_the_book_starts_a_window_per_package_version_and_skips_packages_without_bins() -> None:
    book = FeedbackBook()
    x = digits()[0][:10]
    p = np.full((10, 10), 0.1)
    book.count("digits", _Served(1, _drift(20)), FeedbackPolicy(), x, p, None, None)
    book.count("digits", _Served(2, _drift(20)), FeedbackPolicy(), x[:3], p[:3], None, None)
    book.count("other", _Served(1, None), FeedbackPolicy(), x, p, None, None)
    assert book.reports(now=100.0) == []  # 3 rows: not worth a summary yet
    reports = book.reports(now=100.0 + QUIET_REPORT_S)  # ... until the feature was quiet long
    assert [(r["feature"], r["version"], r["rows"]) for r in reports] == [("digits", 2, 3)]
    book.count("digits", _Served(2, _drift(20)), FeedbackPolicy(), x[:4], p[:4], None, None)
    assert [r["rows"] for r in book.reports(now=401.0, final=True)] == [4]  # stopping: now
    assert book.reports(now=2000.0) == []  # nothing came since


def test_a_steady_feature_is_reported_every_10000_rows_at_most_every_5_s() -> None:
    book = FeedbackBook()
    x, _ = digits()
    p = np.full((len(x), 10), 0.1)  # not the model's: its confidence is not compared (int8)
    served = _Served(1, _drift(20), variant="int8")
    reports = []
    for step in range(40):  # 250 unseen digits a second: the package's own distribution
        rows = np.arange(step * 250, step * 250 + 250) % len(x)
        book.count("digits", served, FeedbackPolicy(), x[rows], p[rows], None, None)
        reports += [(step, r["rows"]) for r in book.reports(now=float(step))]
    assert reports == [(39, REPORT_ROWS)]  # no early report: the stream did not move


def test_a_shifted_stream_is_reported_early_within_early_rows() -> None:
    book = FeedbackBook()
    x, _ = digits()
    x = np.concatenate([x, x])
    p = np.full((len(x), 10), 0.1)  # not the model's: its confidence is not compared (int8)
    served = _Served(1, _drift(20), variant="int8")
    book.count("digits", served, FeedbackPolicy(), x[:3000], p[:3000], None, None)
    assert book.reports(now=0.0) == []
    assert book.reports(now=5.0) == []  # looked at the 3,000 rows: they did not move
    shifted = x[:EARLY_ROWS] * 1.5
    book.count("digits", served, FeedbackPolicy(), shifted, p[:EARLY_ROWS], None, None)
    (report,) = book.reports(now=6.0)  # the newest 1,000 rows moved: the whole window goes
    assert report["rows"] == 3000 + EARLY_ROWS
