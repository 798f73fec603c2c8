"""Rollout policies: each judges a canary on one criterion (see base.py for the loop)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierwise.cloud.policy.accuracy import AccuracyPolicy
from tierwise.cloud.policy.base import Judgement, RolloutPolicy, Verdict, judge_canary
from tierwise.cloud.policy.failure_rate import FailureRatePolicy
from tierwise.cloud.policy.health import HealthProbePolicy
from tierwise.cloud.policy.latency import LatencyPolicy
from tierwise.cloud.policy.soak import SoakPolicy

if TYPE_CHECKING:
    from tierwise.wire import RolloutRequest

__all__ = [
    "AccuracyPolicy",
    "FailureRatePolicy",
    "HealthProbePolicy",
    "Judgement",
    "LatencyPolicy",
    "RolloutPolicy",
    "SoakPolicy",
    "Verdict",
    "judge_canary",
    "policies_for",
]


def policies_for(request: RolloutRequest) -> list[RolloutPolicy]:
    """The policies a rollout request asks for: always health and soak, plus each threshold."""
    t = request.thresholds
    policies: list[RolloutPolicy] = [
        HealthProbePolicy(),
        SoakPolicy(request.min_canary_requests, request.bake_seconds),
    ]
    if t.max_error_rate is not None:
        policies.append(FailureRatePolicy(t.max_error_rate, request.min_canary_requests))
    if t.min_accuracy is not None:
        policies.append(AccuracyPolicy(t.min_accuracy, request.min_canary_feedback))
    if t.max_p99_ms is not None:
        policies.append(LatencyPolicy(t.max_p99_ms, request.min_canary_requests))
    return policies
