"""Counters per feature and model version: what /metrics shows and the site status reports.

Latency percentiles come from the most recent answers (a ring of `WINDOW` of them), so a
regression shows within seconds instead of being averaged away by a long good history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tierwise.rules.clock import Clock
from tierwise.rules.escalation_watch import EscalationCheck, EscalationWatch
from tierwise.wire import FeatureCounters

WINDOW = 4096


@dataclass
class VersionMetrics:
    """One feature served by one package version, since `since` (Unix time)."""

    feature: str
    package: str
    version: int
    since: float  # when this version began to serve here, on the agent's wall clock
    requests: int = 0
    rows: int = 0
    errors: int = 0
    escalations: int = 0  # requests that asked the cloud
    hard_rows: int = 0  # rows the cascade's rule found hard (escalated or not)
    cloud_answers: int = 0  # requests the cloud answered (in part)
    degraded: int = 0
    deadline_misses: int = 0  # answers later than the feature's deadline
    feedback_correct: int = 0
    feedback_total: int = 0
    watch: EscalationWatch | None = None  # a cascade's hard share against the plan's
    drifted: bool = False  # the watch's last verdict (an event is recorded when it changes)
    _latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(WINDOW))
    _seen: int = 0

    def record(
        self,
        latency_ms: float,
        rows: int,
        escalated: bool,
        from_cloud: bool,
        degraded: bool,
        correct: int = 0,
        labelled: int = 0,
        hard_rows: int = 0,
        missed_deadline: bool = False,
    ) -> None:
        self.requests += 1
        self.deadline_misses += missed_deadline
        self.hard_rows += hard_rows
        if self.watch is not None:
            self.watch.observe(hard_rows, rows)
        self.rows += rows
        self.escalations += escalated
        self.cloud_answers += from_cloud
        self.degraded += degraded
        self.feedback_correct += correct
        self.feedback_total += labelled
        self._latency_ms[self._seen % WINDOW] = latency_ms
        self._seen += 1

    def percentile_ms(self, q: float) -> float | None:
        n = min(self._seen, WINDOW)
        return float(np.percentile(self._latency_ms[:n], q)) if n else None

    def watch_against(self, planned: float | None) -> None:
        """Watch the hard share against `planned` (None: nothing planned, nothing watched)."""
        if planned is None:
            self.watch = None
        elif self.watch is None or self.watch.planned != planned:
            self.watch = EscalationWatch(planned)

    def escalation_check(self) -> EscalationCheck | None:
        return None if self.watch is None else self.watch.check()

    def counters(self) -> FeatureCounters:
        return FeatureCounters(
            requests=self.requests,
            errors=self.errors,
            escalations=self.escalations,
            p50_ms=self.percentile_ms(50),
            p99_ms=self.percentile_ms(99),
            feedback_correct=self.feedback_correct,
            feedback_total=self.feedback_total,
        )


class Metrics:
    """Every `VersionMetrics` of the agent, keyed by (feature, package, version)."""

    def __init__(self, wall_clock: Clock) -> None:
        self.wall_clock = wall_clock
        self.by_version: dict[tuple[str, str, int], VersionMetrics] = {}
        self.unknown_feature = 0
        self.refused_draining = 0
        # Counters of the device-facing adapters beyond HTTP (e.g. mqtt_expired): name -> help
        self.adapter_help: dict[str, str] = {}
        self.adapter_counts: dict[str, int] = {}

    def adapter_counters(self, help_texts: dict[str, str]) -> dict[str, int]:
        """Counters an adapter increments, shown at /metrics as tierwise_edge_NAME_total."""
        self.adapter_help |= help_texts
        for name in help_texts:
            self.adapter_counts.setdefault(name, 0)
        return self.adapter_counts

    def of(self, feature: str, package: str, version: int) -> VersionMetrics:
        key = (feature, package, version)
        found = self.by_version.get(key)
        if found is None:
            since = self.wall_clock.now()
            found = self.by_version[key] = VersionMetrics(feature, package, version, since)
        return found

    def prometheus(self, gauges: dict[str, float]) -> str:
        """The Prometheus text format (version 0.0.4)."""
        lines: list[str] = []
        counters = {
            "requests": "device requests answered",
            "rows": "input rows answered",
            "errors": "requests that failed",
            "escalations": "requests escalated to the cloud",
            "hard_rows": "rows the cascade's escalation rule found hard",
            "cloud_answers": "requests the cloud answered",
            "degraded": "answers that fell back to the edge model",
            "feedback_correct": "labelled rows answered correctly",
            "feedback_total": "labelled rows",
        }
        for name, help_text in counters.items():
            metric = f"tierwise_edge_{name}_total"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
            for m in self.by_version.values():
                lines.append(f"{metric}{{{_labels(m)}}} {getattr(m, name)}")
        lines += [
            "# HELP tierwise_edge_latency_ms answer latency at the edge (recent window)",
            "# TYPE tierwise_edge_latency_ms summary",
        ]
        for m in self.by_version.values():
            for q in (0.5, 0.99):
                value = m.percentile_ms(q * 100)
                if value is not None:
                    lines.append(f'tierwise_edge_latency_ms{{{_labels(m)},quantile="{q}"}} {value}')
        checks = [(m, m.escalation_check()) for m in self.by_version.values()]
        watched = [(m, c) for m, c in checks if c is not None]
        lines += [
            "# HELP tierwise_edge_hard_share recent share of hard rows, and the plan's",
            "# TYPE tierwise_edge_hard_share gauge",
        ]
        for m, c in watched:
            lines.append(f'tierwise_edge_hard_share{{{_labels(m)},of="recent"}} {c.observed}')
            lines.append(f'tierwise_edge_hard_share{{{_labels(m)},of="plan"}} {c.planned}')
        lines += [
            "# HELP tierwise_edge_escalation_drift 1 while the hard share differs from the plan's",
            "# TYPE tierwise_edge_escalation_drift gauge",
        ]
        for m, c in watched:
            lines.append(f"tierwise_edge_escalation_drift{{{_labels(m)}}} {int(c.drifted)}")
        for name, value in self.adapter_counts.items():
            metric = f"tierwise_edge_{name}_total"
            lines += [f"# HELP {metric} {self.adapter_help[name]}", f"# TYPE {metric} counter"]
            lines.append(f"{metric} {value}")
        for name, value in sorted(gauges.items()):
            metric = f"tierwise_edge_{name}"
            lines += [f"# TYPE {metric} gauge", f"{metric} {value}"]
        return "\n".join(lines) + "\n"


def _labels(m: VersionMetrics) -> str:
    return f'feature="{m.feature}",package="{m.package}",version="{m.version}"'
