"""`plan(spec)`: enumerate, estimate, solve, explain, and compare with cloud-only and edge-only."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from tierwise.errors import InfeasibleError
from tierwise.plan.candidates import Candidate, Placement, enumerate_candidates
from tierwise.plan.estimate import assess
from tierwise.plan.evaluate import FeatureOutcome, Outcome, evaluate
from tierwise.plan.explain import Alternative, describe_violations, reason_line
from tierwise.plan.solve import Solution, solve
from tierwise.plan.training import TrainingDecision, decide_training
from tierwise.spec.model import Spec
from tierwise.spec.units import fmt_money

EXPLAIN_BY_RESOLVING = 60  # up to this many features, price every alternative by re-solving


@dataclass
class FeatureDecision:
    outcome: FeatureOutcome
    reason: str
    alternatives: list[Alternative]


@dataclass
class PlanResult:
    spec: str
    decisions: list[FeatureDecision]
    strategies: dict[str, Outcome]
    training: list[TrainingDecision]
    seconds: dict[str, float] = field(default_factory=dict)
    choice: list[Candidate] = field(default_factory=list, repr=False)

    @property
    def plan(self) -> Outcome:
        return self.strategies["tierwise"]

    def to_dict(self) -> dict[str, Any]:
        data = {
            "spec": self.spec,
            "features": [
                {
                    **asdict(d.outcome),
                    "reason": d.reason,
                    "alternatives": [asdict(a) for a in d.alternatives],
                }
                for d in self.decisions
            ],
            "strategies": {k: asdict(v) for k, v in self.strategies.items()},
            "training": [asdict(t) for t in self.training],
            "seconds": self.seconds,
        }
        finite: dict[str, Any] = _finite(data)
        return finite


def plan(spec: Spec, explain: bool | None = None) -> PlanResult:
    """Place every feature and training job; raise InfeasibleError naming what cannot be met."""
    clock = time.perf_counter()
    candidates = enumerate_candidates(spec)
    assess(spec, candidates)
    t_estimate = time.perf_counter() - clock
    feasible = [[c for c in opts if not c.violations] for opts in candidates]
    for i, options in enumerate(feasible):
        if not options:
            raise InfeasibleError(_no_candidate(spec, i, candidates[i]))
    solution = solve(spec, feasible)
    t_solve = time.perf_counter() - clock - t_estimate
    outcome = evaluate(spec, "tierwise", solution.choice)
    strategies = {
        "cloud-only": evaluate(spec, "cloud-only", _strategy(candidates, Placement.CLOUD)),
        "edge-only": evaluate(spec, "edge-only", _strategy(candidates, Placement.EDGE)),
        "tierwise": outcome,
    }
    if explain is None:
        explain = len(spec.features) <= EXPLAIN_BY_RESOLVING
    decisions = []
    for i, chosen in enumerate(solution.choice):
        alts = _alternatives(spec, candidates, feasible, solution, i, explain)
        decisions.append(FeatureDecision(outcome.features[i], reason_line(chosen, alts), alts))
    training = [decide_training(spec, job) for job in spec.training]
    total = time.perf_counter() - clock
    return PlanResult(
        spec=spec.name,
        decisions=decisions,
        strategies=strategies,
        training=training,
        seconds={"estimate": t_estimate, "solve": t_solve, "total": total},
        choice=solution.choice,
    )


def _strategy(candidates: list[list[Candidate]], placement: Placement) -> list[Candidate]:
    """What a team all-in on one tier would run: its best candidate there, rules or not."""
    out = []
    for options in candidates:
        mine = [c for c in options if c.placement is placement] or options
        out.append(min(mine, key=lambda c: (len(c.violations), -(c.accuracy or 0.0), c.cost)))
    return out


def _alternatives(
    spec: Spec,
    candidates: list[list[Candidate]],
    feasible: list[list[Candidate]],
    solution: Solution,
    index: int,
    explain: bool,
) -> list[Alternative]:
    chosen = solution.choice[index]
    out = []
    for cand in candidates[index]:
        if cand is chosen:
            continue
        if cand.violations:
            out.append(Alternative(cand.label, cand.placement.value, describe_violations(cand)))
            continue
        if not explain:
            out.append(Alternative(cand.label, cand.placement.value, "feasible; not the optimum"))
            continue
        pinned = list(feasible)
        pinned[index] = [cand]
        try:
            extra = solve(spec, pinned).cost - solution.cost
        except InfeasibleError as exc:
            text = str(exc).removeprefix("no plan meets every hard constraint: ")
            out.append(Alternative(cand.label, cand.placement.value, f"shared capacity: {text}"))
            continue
        extra = max(extra, 0.0)
        if extra < 0.005:
            why = "same cost; the plan's choice is more accurate or equal (tie)"
        else:
            why = f"costs {fmt_money(extra)}/month more"
        out.append(Alternative(cand.label, cand.placement.value, why, extra))
    return out


def _no_candidate(spec: Spec, index: int, options: list[Candidate]) -> str:
    feature = spec.features[index]
    if not options:
        return (
            f"feature {feature.name}: model {feature.model} has no latency or FLOPs figure "
            "for any tier"
        )
    lines = "; ".join(f"{c.label}: {describe_violations(c)}" for c in options)
    return f"feature {feature.name}: no placement meets its hard constraints — {lines}"


def _finite(value: Any) -> Any:
    """JSON has no infinity: an overloaded queue's latency becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
