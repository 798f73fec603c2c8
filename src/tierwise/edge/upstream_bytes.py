"""What the feedback path costs upstream, beside what uploading every escalated input would.

The learning loop's promise (issue 10, acceptance 3) is that a site's feedback costs the WAN
far less than shipping the hard inputs themselves: per feature the agent counts

- `feedback_bytes`: the body of every feedback report it put into the outbox, as the outbox
  stores it (compact JSON: what the uploader batches and gzips), without its raw examples,
  which `example_bytes` counts (where the spec lets raw inputs reach the cloud, they are a
  centralized retraining's training data: a data path, not the anonymized feedback), and
- `escalated_input_bytes`: for every row the cloud answered, that row's inputs as compact
  JSON, as the escalation request encodes them — what uploading every escalated raw input
  would cost, before the same gzip. Only rows the cloud answered count (a call that came
  back too late has no answer to learn from): the yardstick errs small, not large.

Both are totals since the agent started (`since` in /v1/state): a rate per hour is their
difference over an hour, as Prometheus' `increase(...[1h])` computes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["FeatureBytes", "UpstreamBytes", "input_json_bytes"]

# The escalation request's encoding (httpx: compact separators, no NaN); floats print the
# same whatever ensure_ascii says.
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def input_json_bytes(rows: NDArray[Any]) -> int:
    """The bytes of each row's inputs as compact JSON (`[0.5,0.0,...]`), summed over rows."""
    return sum(len(_JSON.encode(row)) for row in rows.tolist())


@dataclass
class FeatureBytes:
    """One feature's upstream byte counters since the agent started."""

    feedback_bytes: int = 0  # the summaries: counts only (the anonymized feedback path)
    feedback_reports: int = 0
    example_bytes: int = 0  # raw examples in them, only where the spec lets raw data out
    escalated_input_bytes: int = 0
    escalated_rows: int = 0


class UpstreamBytes:
    """The counters per feature; /v1/state and /metrics show them."""

    def __init__(self) -> None:
        self.features: dict[str, FeatureBytes] = {}

    def of(self, feature: str) -> FeatureBytes:
        found = self.features.get(feature)
        if found is None:
            found = self.features[feature] = FeatureBytes()
        return found

    def feedback(self, feature: str, body_bytes: int, example_bytes: int = 0) -> None:
        """A feedback report of `body_bytes` went into the outbox, `example_bytes` of them
        its raw examples (the training data of a centralized retraining, not feedback)."""
        counts = self.of(feature)
        counts.feedback_bytes += body_bytes - example_bytes
        counts.example_bytes += example_bytes
        counts.feedback_reports += 1

    def escalated(self, feature: str, rows: NDArray[np.float32]) -> None:
        """The cloud answered these rows (their inputs crossed the WAN in the request)."""
        counts = self.of(feature)
        counts.escalated_input_bytes += input_json_bytes(rows)
        counts.escalated_rows += len(rows)

    def prometheus(self) -> str:
        """Both byte counters per feature, in the Prometheus text format."""
        lines: list[str] = []
        for name, help_text in (
            ("feedback_bytes", "feedback summary bytes put into the outbox (JSON, before gzip)"),
            (
                "example_bytes",
                "raw example bytes in feedback reports, where allowed (JSON, before gzip)",
            ),
            (
                "escalated_input_bytes",
                "bytes of the inputs of every row the cloud answered (JSON, before gzip)",
            ),
        ):
            metric = f"tierwise_edge_{name}_total"
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
            for feature, counts in sorted(self.features.items()):
                lines.append(f'{metric}{{feature="{feature}"}} {getattr(counts, name)}')
        return "\n".join(lines) + "\n"
