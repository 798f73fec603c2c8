"""What the devices of one site saw, per feature: latencies, misses, who answered, and why.

Counted on the device side of the wire — the time from sending a request to having its
answer, which is what a deadline is about. `window()` gives the figures since the previous
call (the live view, once a second); `summary()` the whole run (run.json).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Reasons the edge agent gives when a row wanted the cloud (see edge/router.py): the cloud
# answered it, or it was kept local because the cloud was late, unreachable, down or too far.
WANTED_CLOUD = {
    "escalated",
    "cloud",
    "cloud late",
    "cloud unreachable",
    "cloud down",
    "round trip over budget",
}
SENT_TO_CLOUD_LOCAL_ANSWER = {"cloud late", "cloud unreachable"}
QUANTILES = (50.0, 90.0, 99.0, 99.9)


def percentiles(values: list[float] | np.ndarray, qs: tuple[float, ...]) -> dict[str, float]:
    """{"p50": ..., "p99": ...} of `values` (empty: no keys)."""
    if len(values) == 0:
        return {}
    found = np.percentile(np.asarray(values, dtype=np.float64), qs)
    return {f"p{q:g}": float(v) for q, v in zip(qs, found, strict=True)}


@dataclass
class FeatureStats:
    """Counts for one feature at one site since the devices started."""

    feature: str
    deadline_ms: float
    percentile: float
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    answered: int = 0
    late: int = 0  # answered after the deadline
    failed: Counter[str] = field(default_factory=Counter)  # no answer: error kind -> count
    shed: int = 0  # not sent: too many requests of this device already waiting
    unfinished: int = 0  # still waiting at the end, within a deadline longer than the run
    answered_by: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    degraded: int = 0
    wanted_cloud: int = 0  # the plan wanted the cloud for it (a hard row, a cloud feature)
    sent_to_cloud: int = 0  # a request actually went to the cloud
    correct: int = 0
    labelled: int = 0
    acked: dict[str, list[int]] = field(default_factory=dict)  # stream -> event seqs
    request_bytes: int = 0  # request bodies sent (JSON), for the plan's payload figure
    response_bytes: int = 0  # answer bodies received
    _window: list[float] = field(default_factory=list)
    _window_counts: Counter[str] = field(default_factory=Counter)
    _window_versions: Counter[int] = field(default_factory=Counter)  # answers per model version

    @property
    def misses(self) -> int:
        """Answers after the deadline, and requests never answered or never sent."""
        return self.late + sum(self.failed.values()) + self.shed

    def record_answer(
        self,
        latency_ms: float,
        answered_by: str,
        reason: str,
        degraded: bool,
        correct: bool | None,
        stream: str | None = None,
        seq: int | None = None,
        version: int | None = None,
    ) -> None:
        self.answered += 1
        if version is not None:
            self._window_versions[version] += 1
        self.latencies_ms.append(latency_ms)
        self._window.append(latency_ms)
        late = latency_ms > self.deadline_ms
        self.late += late
        self.answered_by[answered_by] += 1
        self.reasons[reason] += 1
        self.degraded += degraded
        wanted = reason in WANTED_CLOUD
        sent = answered_by == "cloud" or reason in SENT_TO_CLOUD_LOCAL_ANSWER
        self.wanted_cloud += wanted
        self.sent_to_cloud += sent
        if correct is not None:
            self.correct += correct
            self.labelled += 1
            self._window_counts["correct"] += correct
            self._window_counts["labelled"] += 1
        if stream is not None and seq is not None:
            self.acked.setdefault(stream, []).append(seq)
        w = self._window_counts
        w["answered"] += 1
        w["late"] += late
        w["cloud"] += answered_by == "cloud"
        w["wanted_cloud"] += wanted
        w["degraded"] += degraded

    def record_failure(self, kind: str) -> None:
        self.failed[kind] += 1
        self._window_counts["failed"] += 1

    def record_shed(self) -> None:
        self.shed += 1
        self._window_counts["failed"] += 1

    def window(self) -> dict[str, Any]:
        """Figures since the previous call, then start a new window."""
        counts = self._window_counts
        out: dict[str, Any] = {
            "answered": counts["answered"],
            "late": counts["late"],
            "failed": counts["failed"],
            "cloud": counts["cloud"],
            "wanted_cloud": counts["wanted_cloud"],
            "degraded": counts["degraded"],
            "correct": counts["correct"],
            "labelled": counts["labelled"],
            **percentiles(self._window, (50.0, 99.0)),
            "total": self.answered,
            "misses": self.misses,
            "versions": {str(v): n for v, n in sorted(self._window_versions.items())},
        }
        self._window = []
        self._window_counts = Counter()
        self._window_versions = Counter()
        return out

    def summary(self) -> dict[str, Any]:
        n = self.answered
        tail = percentiles(self.latencies_ms, (*QUANTILES, self.percentile))
        return {
            "feature": self.feature,
            "deadline_ms": self.deadline_ms,
            "percentile": self.percentile,
            "sent": self.sent,
            "answered": n,
            "late": self.late,
            "failed": dict(self.failed),
            "shed": self.shed,
            "unfinished": self.unfinished,
            "misses": self.misses,
            "latency_ms": tail,
            "latency_at_percentile_ms": tail.get(f"p{self.percentile:g}"),
            "max_ms": max(self.latencies_ms) if n else None,
            "answered_by": dict(self.answered_by),
            "reasons": dict(self.reasons),
            "degraded": self.degraded,
            "wanted_cloud": self.wanted_cloud,
            "sent_to_cloud": self.sent_to_cloud,
            "correct": self.correct,
            "labelled": self.labelled,
            "payload_bytes": self.request_bytes / self.sent if self.sent else None,
            "result_bytes": self.response_bytes / n if n else None,
            "acked_events": sum(len(v) for v in self.acked.values()),
            "acked_by_stream": {s: len(v) for s, v in sorted(self.acked.items())},
        }
