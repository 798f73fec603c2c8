"""The cascade calibration curve: how much to escalate to the cloud, and what accuracy that buys.

The edge answers when its escalation rule's score (rules/routers: the top class probability
for the classic rule) is at least a threshold, and escalates to the cloud model otherwise.
Sweeping the threshold over the evaluation data gives, for each threshold, the share
escalated and the accuracy of the joint answer. The planner reads (escalated, accuracy)
pairs; the edge router reads the threshold for its budget.

Each point also carries a guarantee for what stays local: a one-sided 95% Clopper-Pearson
upper bound on the edge's error rate among the rows kept local. Under the usual conformal
assumption (field data exchangeable with the evaluation rows) the kept answers are wrong at
most that often, with 95% confidence; the bound is loose where few rows are kept.

The oracle escalation rate is the edge model's error rate: a router that knew exactly which
answers are wrong would escalate just those. How close the curve gets to the cloud's accuracy
at that rate says how good confidence is as a signal.

numpy, and scipy's beta quantile for the bound (build side).
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


BOUND_CONFIDENCE = 0.95


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
        # Rows tied at the threshold: escalate the share of them that makes up k rows.
        below = int(np.searchsorted(ordered, threshold, side="left"))
        tied = int(np.searchsorted(ordered, threshold, side="right")) - below
        tie_share = min((k - below) / tied, 0.999999) if tied and k > below else 0.0
        point = point_at(threshold, conf, edge_correct, cloud_correct, tie_share)
        # Ties in confidence can make two targets escalate the same samples: keep the lower
        # threshold, which escalates no more on new data.
        points.setdefault(point.escalated, point)
    return sorted(points.values(), key=lambda p: p.escalated)


def point_at(
    threshold: float,
    confidence: NDArray[np.floating],
    edge_correct: NDArray[np.bool_],
    cloud_correct: NDArray[np.bool_],
    tie_share: float = 0.0,
) -> CurvePoint:
    """Escalated share and joint accuracy when confidence < threshold goes to the cloud, and
    `tie_share` of the rows exactly at it (counted in expectation: tie_draws are uniform)."""
    conf = np.asarray(confidence)
    escalate = (conf < threshold) + tie_share * (conf == threshold)  # chance each escalates
    joint = escalate * cloud_correct + (1 - escalate) * edge_correct
    kept = 1 - escalate
    return CurvePoint(
        threshold=threshold,
        escalated=float(escalate.mean()),
        accuracy=float(joint.mean()),
        tie_share=tie_share,
        local_error_bound=local_error_bound(
            float((kept * ~np.asarray(edge_correct)).sum()), float(kept.sum())
        ),
    )


def local_error_bound(wrong: float, kept: float, confidence: float = BOUND_CONFIDENCE) -> float:
    """One-sided Clopper-Pearson upper bound on an error rate seen as `wrong` of `kept` (the
    counts may be expected ones, where tied rows are kept with a probability)."""
    if kept <= 0 or wrong >= kept:
        return 1.0
    from scipy.stats import beta

    return round(float(beta.ppf(confidence, wrong + 1, kept - wrong)), 6)
