"""The cascade calibration curve: how much to escalate to the cloud, and what accuracy that buys.

The edge answers when its confidence (top class probability) is at least a threshold, and
escalates to the cloud model otherwise. Sweeping the threshold over the evaluation data gives,
for each threshold, the share escalated and the accuracy of the joint answer. The planner
reads (escalated, accuracy) pairs; the edge router reads the threshold for its budget.

The oracle escalation rate is the edge model's error rate: a router that knew exactly which
answers are wrong would escalate just those. How close the curve gets to the cloud's accuracy
at that rate says how good confidence is as a signal.

Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from tierwise.package.manifest import CurvePoint

# Escalated shares the curve is evaluated at: dense where budgets usually are (a few percent).
ESCALATION_TARGETS = (
    0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10, 0.12, 0.15, 0.20, 0.25, 0.30, 0.40,
    0.50, 0.75, 1.0,
)  # fmt: skip
ESCALATE_ALL = 1.000001  # above any probability: every sample escalates


def cascade_curve(
    confidence: NDArray[np.floating],
    edge_correct: NDArray[np.bool_],
    cloud_correct: NDArray[np.bool_],
    targets: Sequence[float] = ESCALATION_TARGETS,
) -> list[CurvePoint]:
    """One point per distinct escalated share, escalating at most each target share."""
    conf = np.asarray(confidence, dtype=np.float64)
    n = len(conf)
    if n == 0:
        raise ValueError("no evaluation samples")
    ordered = np.sort(conf)
    points: dict[float, CurvePoint] = {}
    for target in sorted(targets):
        k = int(np.floor(target * n + 1e-9))
        threshold = float(ordered[k]) if k < n else ESCALATE_ALL
        if k == 0:
            threshold = 0.0  # escalate nothing, even when the least confident sample ties
        point = point_at(threshold, conf, edge_correct, cloud_correct)
        # Ties in confidence can make two targets escalate the same samples: keep the lower
        # threshold, which escalates no more on new data.
        points.setdefault(point.escalated, point)
    return sorted(points.values(), key=lambda p: p.escalated)


def point_at(
    threshold: float,
    confidence: NDArray[np.floating],
    edge_correct: NDArray[np.bool_],
    cloud_correct: NDArray[np.bool_],
) -> CurvePoint:
    """Escalated share and joint accuracy when confidence < threshold goes to the cloud."""
    escalate = np.asarray(confidence) < threshold
    joint = np.where(escalate, cloud_correct, edge_correct)
    return CurvePoint(
        threshold=threshold, escalated=float(escalate.mean()), accuracy=float(joint.mean())
    )
