"""Rollout policies judge canary evidence: PASS, WAIT for more evidence, or FAIL (roll back)."""

from __future__ import annotations

import pytest

from tierwise.cloud.policy import (
    AccuracyPolicy,
    FailureRatePolicy,
    HealthProbePolicy,
    LatencyPolicy,
    SoakPolicy,
    Verdict,
    judge_canary,
    policies_for,
)
from tierwise.cloud.status import CanaryEvidence
from tierwise.wire import RolloutRequest, RolloutThresholds


def evidence(**kw: object) -> CanaryEvidence:
    e = CanaryEvidence(sites=["c1"], reported_sites={"c1"}, elapsed_s=100.0)
    for key, value in kw.items():
        setattr(e, key, value)
    return e


@pytest.mark.parametrize(
    ("errors", "requests", "verdict"),
    [(0, 50, Verdict.WAIT), (5, 100, Verdict.PASS), (6, 100, Verdict.FAIL), (0, 0, Verdict.WAIT)],
)
def test_error_rate(errors: int, requests: int, verdict: Verdict) -> None:
    judged = FailureRatePolicy(0.05, min_requests=100).judge(
        evidence(errors=errors, requests=requests)
    )
    assert judged.verdict is verdict


@pytest.mark.parametrize(
    ("correct", "total", "verdict"),
    [(9, 10, Verdict.WAIT), (18, 20, Verdict.PASS), (17, 20, Verdict.FAIL)],
)
def test_accuracy_waits_for_enough_labels(correct: int, total: int, verdict: Verdict) -> None:
    judged = AccuracyPolicy(0.9, min_feedback=20).judge(
        evidence(feedback_correct=correct, feedback_total=total)
    )
    assert judged.verdict is verdict


@pytest.mark.parametrize(
    ("p99", "requests", "verdict"),
    [(None, 200, Verdict.WAIT), (40.0, 200, Verdict.PASS), (60.0, 200, Verdict.FAIL)],
)
def test_latency(p99: float | None, requests: int, verdict: Verdict) -> None:
    judged = LatencyPolicy(50.0, min_requests=100).judge(evidence(p99_ms=p99, requests=requests))
    assert judged.verdict is verdict


def test_health_fails_at_once_and_waits_for_silent_canaries() -> None:
    policy = HealthProbePolicy()
    sick = policy.judge(evidence(unhealthy={"c1": "onnx load failed"}))
    silent = policy.judge(CanaryEvidence(sites=["c1", "c2"], reported_sites={"c1"}))
    assert sick.verdict is Verdict.FAIL
    assert "onnx load failed" in sick.reason
    assert silent.verdict is Verdict.WAIT
    assert "c2" in silent.reason


def test_soak_needs_both_traffic_and_time() -> None:
    policy = SoakPolicy(min_requests=100, bake_seconds=60)
    assert policy.judge(evidence(requests=99, elapsed_s=999)).verdict is Verdict.WAIT
    assert policy.judge(evidence(requests=100, elapsed_s=59)).verdict is Verdict.WAIT
    assert policy.judge(evidence(requests=100, elapsed_s=60)).verdict is Verdict.PASS


def test_fail_beats_wait_beats_pass_and_reasons_are_kept() -> None:
    request = RolloutRequest(
        package="p",
        version=2,
        canary_sites=["c1"],
        thresholds=RolloutThresholds(max_error_rate=0.01, min_accuracy=0.9, max_p99_ms=50),
        min_canary_requests=100,
        bake_seconds=0,
    )
    policies = policies_for(request)
    good = evidence(requests=200, errors=1, p99_ms=20.0, feedback_correct=95, feedback_total=100)
    no_labels = evidence(requests=200, errors=1, p99_ms=20.0)
    slow_no_labels = evidence(requests=200, errors=1, p99_ms=80.0)
    assert judge_canary(policies, good).verdict is Verdict.PASS
    assert judge_canary(policies, no_labels).verdict is Verdict.WAIT
    judged = judge_canary(policies, slow_no_labels)
    assert judged.verdict is Verdict.FAIL
    assert "p99 80.0 ms > max 50.0 ms" in judged.reason


def test_unset_thresholds_are_not_checked() -> None:
    request = RolloutRequest(package="p", version=2, canary_sites=["c1"], min_canary_requests=1)
    kinds = {type(p) for p in policies_for(request)}
    assert kinds == {HealthProbePolicy, SoakPolicy}
