"""What a site tells the cloud about its stream, and what it may not: feedback and its filter.

Per served feature the agent keeps a `FeedbackWindow` between two reports: its inputs counted
into the package's drift bins (rules/drift.py), the edge model's top probability counted into
fixed bins, the rows, the hard rows, and of the hard rows the cloud answered how many it
answered as the edge model had — the edge's accuracy where it doubted itself, which falls
when the field moves. Where the spec lets raw inputs reach the cloud it also keeps a bounded
uniform sample of the rows whose class is known — the device sent the true label, or the row
was hard and the cloud answered it — with both: the examples a centralized retraining learns
from (ground truth where it exists, the cloud's answer elsewhere).

`FeedbackPolicy` is the one gate between the window and the WAN: `report` builds everything
that leaves. Where raw data may not leave the site the report is integers only — counts per
bin, no value, no row, no device or request identifier — the article's "the cloud only sees
anonymized summaries". The bins' edges are not in it either: the cloud has them in the
package. A report is a telemetry event, so it crosses outages through the outbox like any
other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from tierwise.package.manifest import DriftReference
from tierwise.rules.drift import (
    CONFIDENCE_EDGES,
    bin_counts,
    confidence_counts,
    padded_edges,
    shifts_of_counts,
)

MAX_EXAMPLES = 32  # rows per report, where raw inputs may reach the cloud
PENDING_ROWS = 4_096  # rows kept (on the site) before they are binned in one go
# When a feature's window is reported. In steady state once it holds REPORT_ROWS rows (at
# most every REPORT_EVERY_S), or QUIET_REPORT_S after the last report if it has any: a
# 137-column summary is ~5 KB, so this costs the WAN half a byte a row. But the site looks
# first: every EARLY_ROWS rows it tests the newest ones against the package's yardstick with
# the cloud's own test (rules/drift.py), and when they moved it reports at once — the cloud
# then judges a shift within about EARLY_ROWS rows of it instead of REPORT_ROWS.
REPORT_EVERY_S = 5.0  # an agent's default; its settings' feedback_interval_s
REPORT_ROWS = 10_000
EARLY_ROWS = 1_000
QUIET_REPORT_S = 1_800.0


@dataclass(frozen=True)
class FeedbackPolicy:
    """What may cross the WAN for one feature: summaries always, raw hard rows only where the
    spec's `raw_data_may_reach` is the cloud."""

    raw_may_leave: bool = False
    max_examples: int = MAX_EXAMPLES

    def report(self, window: FeedbackWindow) -> dict[str, Any]:
        """The event body for the window's counts (and examples, where allowed)."""
        body: dict[str, Any] = {
            "feature": window.feature,
            "package": window.package,
            "version": window.version,
            "variant": window.variant,
            "rows": window.rows,
            "hard_rows": window.hard_rows,
            "cloud_answered": window.cloud_answered,
            "cloud_agreed": window.cloud_agreed,
            "inputs": [
                [int(c) for c in counts[:used]]
                for counts, used in zip(window.input_counts, window.bins_used, strict=True)
            ],
            "confidence": [int(c) for c in window.confidence_counts],
            "raw": self.raw_may_leave,
        }
        if self.raw_may_leave:
            body["examples"] = [
                {"inputs": [float(v) for v in row], "cloud_label": cloud_label, "label": label}
                for row, cloud_label, label in window.examples[: self.max_examples]
            ]
        return body


SUMMARIES_ONLY = FeedbackPolicy()
WITH_EXAMPLES = FeedbackPolicy(raw_may_leave=True)


def policy_for(raw_may_reach_cloud: bool) -> FeedbackPolicy:
    """The policy of a feature whose raw inputs may (or may not) reach the cloud: one shared
    object each, not one per request."""
    return WITH_EXAMPLES if raw_may_reach_cloud else SUMMARIES_ONLY


@dataclass
class FeedbackWindow:
    """Counts for one feature since the last report (see the module's docstring)."""

    feature: str
    package: str
    version: int
    variant: str
    reference: DriftReference
    max_examples: int = MAX_EXAMPLES
    rows: int = 0
    hard_rows: int = 0
    cloud_answered: int = 0
    cloud_agreed: int = 0
    # (inputs, the cloud's label, the device's label or None), where raw inputs may leave
    examples: list[tuple[list[float], Any, int | None]] = field(default_factory=list)
    _seen: int = 0  # rows offered to the sample since the last report (reservoir)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        self.edges = padded_edges(self.reference.edges)
        self.bins_used = [len(e) + 1 for e in self.reference.edges]
        self._input_counts = np.zeros((len(self.bins_used), self.edges.shape[1] + 1), np.int64)
        self._confidence_counts = np.zeros(len(CONFIDENCE_EDGES) + 1, np.int64)
        # Binning one request at a time costs more than the request's model call (numpy's
        # per-call overhead): rows wait here and are binned together, PENDING_ROWS at most.
        self._pending: list[NDArray[Any]] = []
        self._pending_probabilities: list[NDArray[Any]] = []
        self._pending_rows = 0
        # the counts when the newest rows were last looked at (`recent_shift`)
        self._looked_inputs = np.zeros_like(self._input_counts)
        self._looked_confidence = np.zeros_like(self._confidence_counts)
        self._looked_rows = 0

    @property
    def input_counts(self) -> NDArray[np.int64]:
        self._flush()
        return self._input_counts

    @property
    def confidence_counts(self) -> NDArray[np.int64]:
        self._flush()
        return self._confidence_counts

    def _flush(self) -> None:
        if not self._pending:
            return
        rows = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        top = np.max(np.concatenate(self._pending_probabilities), axis=1)
        self._pending, self._pending_probabilities, self._pending_rows = [], [], 0
        self._input_counts += bin_counts(self.edges, rows)
        self._confidence_counts += confidence_counts(top)

    def add(
        self,
        inputs: NDArray[Any],
        edge_probabilities: NDArray[Any],
        hard: NDArray[np.bool_] | None,
        cloud_labels: list[Any] | None,
        edge_labels: list[Any] | None,
        true_labels: list[int] | None = None,
    ) -> None:
        """Count one request: its rows, the edge model's probabilities for them, which rows
        were hard, and — when the cloud answered the hard rows — its labels for those, in
        order, beside the edge model's labels for every row (and the device's, when sent)."""
        self._pending.append(inputs)
        self._pending_probabilities.append(edge_probabilities)  # top one taken when binned
        self._pending_rows += len(inputs)
        if self._pending_rows >= PENDING_ROWS:
            self._flush()
        self.rows += len(inputs)
        answered: dict[int, Any] = {}  # row -> the cloud's label, for hard rows it answered
        if hard is not None and hard.any():
            positions = np.flatnonzero(hard)
            self.hard_rows += len(positions)
            if cloud_labels is not None and edge_labels is not None:
                self.cloud_answered += len(positions)
                for i, label in zip(positions, cloud_labels, strict=True):
                    self.cloud_agreed += edge_labels[int(i)] == label
                    answered[int(i)] = label
        if self.max_examples == 0:  # summaries only: no row is kept for a report
            return
        # What a retraining learns from: rows whose class is known, from the device (true)
        # or from the cloud model (a hard row it answered).
        known = range(len(inputs)) if true_labels is not None else sorted(answered)
        for row in known:
            truth = None if true_labels is None else true_labels[row]
            self._offer(inputs[row], answered.get(row), truth)

    def _offer(self, row: NDArray[Any], label: Any, truth: int | None) -> None:
        """Reservoir sampling: every row offered so far is in the sample equally likely."""
        self._seen += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(([float(v) for v in row], label, truth))
            return
        slot = self._rng.randrange(self._seen)
        if slot < self.max_examples:
            self.examples[slot] = ([float(v) for v in row], label, truth)

    def recent_shift(self, min_rows: int) -> bool | None:
        """Whether the rows since the last look moved away from the package's yardstick (the
        cloud's test: any column past its threshold); None while they are fewer than
        `min_rows`. Each look starts the next one's rows."""
        if self.rows - self._looked_rows < min_rows:
            return None
        inputs, confidence = self.input_counts, self.confidence_counts
        shifts = shifts_of_counts(
            self.reference,
            inputs - self._looked_inputs,
            confidence - self._looked_confidence,
            self.variant,
        )
        self._looked_inputs, self._looked_confidence = inputs.copy(), confidence.copy()
        self._looked_rows = self.rows
        return any(shift.alarm for shift in shifts)

    def take(self, policy: FeedbackPolicy) -> dict[str, Any] | None:
        """The report of the counts so far (None when nothing came), and a fresh window."""
        if self.rows == 0:
            return None
        body = policy.report(self)
        self.rows = self.hard_rows = self.cloud_answered = self.cloud_agreed = 0
        self._seen = 0
        self.examples = []
        self._input_counts[:] = 0
        self._confidence_counts[:] = 0
        self._looked_inputs[:] = 0
        self._looked_confidence[:] = 0
        self._looked_rows = 0
        return body


class FeedbackSource(Protocol):
    """The served model as feedback needs it (edge/packages.py's PackageAnswerer is one)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def variant(self) -> str: ...

    @property
    def drift_reference(self) -> DriftReference | None: ...


class FeedbackBook:
    """The agent's windows, one per served feature whose package has a drift reference; a new
    package version or variant starts a new window (its bins are the new package's)."""

    def __init__(
        self,
        every_s: float = REPORT_EVERY_S,
        rows: int = REPORT_ROWS,
        quiet_s: float = QUIET_REPORT_S,
        early_rows: int = EARLY_ROWS,
    ) -> None:
        self.windows: dict[str, tuple[FeedbackWindow, FeedbackPolicy]] = {}
        self.every_s, self.rows, self.quiet_s = every_s, rows, quiet_s
        self.early_rows = early_rows
        self._last_report: dict[str, float] = {}  # feature -> when its window was reported

    def count(
        self,
        feature: str,
        model: FeedbackSource,
        policy: FeedbackPolicy,
        inputs: NDArray[Any],
        edge_outputs: NDArray[Any],
        hard: NDArray[np.bool_] | None,
        answered: list[list[float]] | None,
        labels: list[int] | None = None,
    ) -> None:
        """Count a request's rows; `answered` is the joint answer when the cloud answered
        its hard rows (None otherwise), `labels` the device's true class per row if sent."""
        window = self._window(feature, model, policy)
        if window is None:
            return
        cloud_labels = edge_labels = None
        if answered is not None and hard is not None and hard.any():
            cloud_labels = np.argmax(np.asarray(answered)[hard], axis=1).tolist()
            edge_labels = np.argmax(edge_outputs, axis=1).tolist()
        window.add(inputs, edge_outputs, hard, cloud_labels, edge_labels, labels)

    def _window(
        self, feature: str, model: FeedbackSource, policy: FeedbackPolicy
    ) -> FeedbackWindow | None:
        held = self.windows.get(feature)
        if held is not None:
            window, kept = held
            same = (window.package, window.version, window.variant) == (
                model.name,
                model.version,
                model.variant,
            )
            if same and kept == policy:
                return window
        reference = model.drift_reference
        if reference is None:
            self.windows.pop(feature, None)
            return None
        window = FeedbackWindow(
            feature,
            model.name,
            model.version,
            model.variant,
            reference,
            max_examples=policy.max_examples if policy.raw_may_leave else 0,
        )
        self.windows[feature] = (window, policy)
        return window

    def reports(self, now: float, final: bool = False) -> list[dict[str, Any]]:
        """The reports of the windows that are due (see REPORT_ROWS), or of every window with
        rows when `final` (the agent is stopping)."""
        bodies = []
        for feature, (window, policy) in self.windows.items():
            since = now - self._last_report.setdefault(feature, now)
            due = final or since >= self.quiet_s
            if not due and since >= self.every_s:
                due = window.rows >= self.rows or bool(window.recent_shift(self.early_rows))
            if not due:
                continue
            body = window.take(policy)
            if body is not None:
                self._last_report[feature] = now
                bodies.append(body)
        return bodies
