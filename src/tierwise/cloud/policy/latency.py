"""Roll back when the canary's p99 latency exceeds the operator's bound."""

from __future__ import annotations

from tierwise.cloud.policy.base import Judgement, RolloutPolicy
from tierwise.cloud.status import CanaryEvidence


class LatencyPolicy(RolloutPolicy):
    """FAIL when the worst canary p99 exceeds `max_p99_ms` once `min_requests` were served."""

    def __init__(self, max_p99_ms: float, min_requests: int) -> None:
        self.max_p99_ms = max_p99_ms
        self.min_requests = max(1, min_requests)

    def judge(self, evidence: CanaryEvidence) -> Judgement:
        p99 = evidence.p99_ms
        if p99 is None or evidence.requests < self.min_requests:
            return Judgement.wait("too few requests to judge p99 latency")
        if p99 > self.max_p99_ms:
            return Judgement.fail(f"p99 {p99:.1f} ms > max {self.max_p99_ms:.1f} ms")
        return Judgement.passed(f"p99 {p99:.1f} ms <= max {self.max_p99_ms:.1f} ms")
