"""Roll back when the canary answers labelled requests worse than the operator allows."""

from __future__ import annotations

from tierwise.cloud.policy.base import Judgement, RolloutPolicy
from tierwise.cloud.status import CanaryEvidence


class AccuracyPolicy(RolloutPolicy):
    """FAIL when accuracy on labelled feedback falls below `min_accuracy`.

    Judged once `min_feedback` labelled answers came back: without labels there is no
    accuracy, and a rollout waits rather than guess.
    """

    def __init__(self, min_accuracy: float, min_feedback: int) -> None:
        self.min_accuracy = min_accuracy
        self.min_feedback = max(1, min_feedback)

    def judge(self, evidence: CanaryEvidence) -> Judgement:
        accuracy = evidence.accuracy
        if accuracy is None or evidence.feedback_total < self.min_feedback:
            return Judgement.wait(
                f"labelled feedback {evidence.feedback_total}/{self.min_feedback}"
            )
        summary = f"accuracy {accuracy:.2%} ({evidence.feedback_correct}/{evidence.feedback_total})"
        if accuracy < self.min_accuracy:
            return Judgement.fail(f"{summary} < min {self.min_accuracy:.2%}")
        return Judgement.passed(f"{summary} >= min {self.min_accuracy:.2%}")
