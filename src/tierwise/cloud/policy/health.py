"""A canary whose package failed to load or failed its health probe fails at once."""

from __future__ import annotations

from tierwise.cloud.policy.base import Judgement, RolloutPolicy
from tierwise.cloud.status import CanaryEvidence


class HealthProbePolicy(RolloutPolicy):
    """FAIL as soon as any canary reports the new version unhealthy; WAIT until all report it."""

    def judge(self, evidence: CanaryEvidence) -> Judgement:
        if evidence.unhealthy:
            sites = ", ".join(f"{s}: {d}" for s, d in sorted(evidence.unhealthy.items()))
            return Judgement.fail(f"health probe failed on canary ({sites})")
        if evidence.missing_sites:
            return Judgement.wait(
                "waiting for canary " + ", ".join(evidence.missing_sites) + " to report it"
            )
        return Judgement.passed("healthy on every canary")
