"""A canary must serve enough requests, for long enough, before anyone trusts it."""

from __future__ import annotations

from tierwise.cloud.policy.base import Judgement, RolloutPolicy
from tierwise.cloud.status import CanaryEvidence


class SoakPolicy(RolloutPolicy):
    """WAIT until the canaries served `min_requests` and `bake_seconds` have passed."""

    def __init__(self, min_requests: int, bake_seconds: float) -> None:
        self.min_requests = min_requests
        self.bake_seconds = bake_seconds

    def judge(self, evidence: CanaryEvidence) -> Judgement:
        if evidence.requests < self.min_requests:
            return Judgement.wait(f"canary served {evidence.requests}/{self.min_requests} requests")
        if evidence.elapsed_s < self.bake_seconds:
            return Judgement.wait(f"baking {evidence.elapsed_s:.0f}/{self.bake_seconds:.0f} s")
        return Judgement.passed(f"{evidence.requests} requests over {evidence.elapsed_s:.0f} s")
