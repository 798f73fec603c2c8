"""Roll back when the canary's requests fail more often than the operator allows."""

from __future__ import annotations

from tierwise.cloud.policy.base import Judgement, RolloutPolicy
from tierwise.cloud.status import CanaryEvidence


class FailureRatePolicy(RolloutPolicy):
    """FAIL when errors / requests exceeds `max_error_rate` once `min_requests` were served."""

    def __init__(self, max_error_rate: float, min_requests: int) -> None:
        self.max_error_rate = max_error_rate
        self.min_requests = max(1, min_requests)

    def judge(self, evidence: CanaryEvidence) -> Judgement:
        rate = evidence.error_rate
        if rate is None or evidence.requests < self.min_requests:
            return Judgement.wait("too few requests to judge the error rate")
        summary = f"error rate {rate:.2%} ({evidence.errors}/{evidence.requests})"
        if rate > self.max_error_rate:
            return Judgement.fail(f"{summary} > max {self.max_error_rate:.2%}")
        return Judgement.passed(f"{summary} <= max {self.max_error_rate:.2%}")
