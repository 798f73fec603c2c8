"""Rollout policies: small judges of a canary, and the fixed loop that combines them.

Each policy looks at the `CanaryEvidence` of a rollout and says PASS, WAIT (not enough
evidence yet) or FAIL (the canary regressed — roll back). `judge_canary` asks every
policy: any FAIL rolls back, else any WAIT keeps waiting, else the rollout is promoted.
Adding a criterion is one new subclass, nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tierwise.cloud.status import CanaryEvidence


class Verdict(StrEnum):
    PASS = "pass"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str

    @classmethod
    def passed(cls, reason: str) -> Judgement:
        return cls(Verdict.PASS, reason)

    @classmethod
    def wait(cls, reason: str) -> Judgement:
        return cls(Verdict.WAIT, reason)

    @classmethod
    def fail(cls, reason: str) -> Judgement:
        return cls(Verdict.FAIL, reason)


class RolloutPolicy(ABC):
    """One criterion a canary must meet before its version reaches the other sites."""

    @abstractmethod
    def judge(self, evidence: CanaryEvidence) -> Judgement:
        """PASS, WAIT or FAIL for this evidence, with a reason an operator can read."""


def judge_canary(policies: Sequence[RolloutPolicy], evidence: CanaryEvidence) -> Judgement:
    """Combine every policy's judgement: FAIL beats WAIT beats PASS; reasons are joined."""
    judgements = [p.judge(evidence) for p in policies]
    for verdict in (Verdict.FAIL, Verdict.WAIT):
        reasons = [j.reason for j in judgements if j.verdict is verdict]
        if reasons:
            return Judgement(verdict, "; ".join(reasons))
    return Judgement.passed("; ".join(j.reason for j in judgements))
