"""`plan(spec)`: enumerate, estimate, solve, explain, and compare with cloud-only and edge-only."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from tierwise.errors import InfeasibleError
from tierwise.plan.candidates import PLACEMENTS, Candidate
from tierwise.plan.columns import Index, Mask
from tierwise.plan.estimate import candidate_table
from tierwise.plan.evaluate import FeatureOutcome, Outcome, evaluate_assignment
from tierwise.plan.explain import Alternative, describe_violations, reason_line
from tierwise.plan.solve import Solution, solve
from tierwise.plan.table import CandidateTable, fleet_rate
from tierwise.plan.training import TrainingDecision, decide_training
from tierwise.plan.views import candidate_view
from tierwise.plan.violations import describe, violation_counts, violations_of
from tierwise.spec.model import Spec
from tierwise.spec.tiers import Placement
from tierwise.spec.units import fmt_money

EXPLAIN_BY_RESOLVING = 60  # up to this many features, price every alternative by re-solving
STRATEGY_NAMES = {"cloud-only": Placement.CLOUD, "edge-only": Placement.EDGE}


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
    # How much dearer than the cheapest plan this one may be, as a share: at most the
    # solver's RELATIVE_GAP, more only if it hit its time limit first.
    optimality_gap: float = 0.0
    table: CandidateTable | None = field(default=None, repr=False, compare=False)
    choices: dict[str, Index] = field(default_factory=dict, repr=False, compare=False)

    @property
    def plan(self) -> Outcome:
        return self.strategies["tierwise"]

    @cached_property
    def choice(self) -> list[Candidate]:
        """The plan's candidate of each feature, as objects (built on first use)."""
        return self.strategy_choice("tierwise")

    def strategy_choice(self, name: str) -> list[Candidate]:
        """The candidate of each feature under a strategy: tierwise, cloud-only, edge-only."""
        assert self.table is not None, "a PlanResult made by plan() keeps its candidates"
        return [candidate_view(self.table, int(c)) for c in self.choices[name]]

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
            **self._costs(),
            "training": [asdict(t) for t in self.training],
            "seconds": self.seconds,
            "optimality_gap": self.optimality_gap,
        }
        finite: dict[str, Any] = _finite(data)
        return finite

    def cost_document(self) -> dict[str, Any]:
        """What the cloud's cost view reads of a plan (`PUT /v1/plan`), without building the
        rest of `to_dict` (every feature's alternatives)."""
        document: dict[str, Any] = _finite({"spec": self.spec, **self._costs()})
        return document

    def _costs(self) -> dict[str, Any]:
        # each feature's requests/s over all its sites, as the spec states them: what the
        # cloud projects measured traffic against (cloud/dashboard/cost.py)
        rates: dict[str, float] = {}
        if self.table is not None:
            fleet = fleet_rate(self.table)
            rates = {d.outcome.feature: float(fleet[i]) for i, d in enumerate(self.decisions)}
        return {
            "strategies": {k: asdict(v) for k, v in self.strategies.items()},
            "requests_per_s": rates,
        }


def plan(spec: Spec, explain: bool | None = None) -> PlanResult:
    """Place every feature and training job; raise InfeasibleError naming what cannot be met."""
    with _cycle_collector_paused():
        return _plan(spec, explain)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a plan is built.

    A fleet plan makes ~100,000 small objects (outcomes, alternatives, words) and no
    reference cycles; each generational pass would rescan them and the whole spec, a
    fifth of the planning time. Reference counting still frees everything; the previous
    setting comes back on the way out, errors included.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(spec: Spec, explain: bool | None) -> PlanResult:
    clock = time.perf_counter()
    table = candidate_table(spec)
    t_estimate = time.perf_counter() - clock
    feasible = table.feasible
    options = np.bincount(table.feature[feasible], minlength=table.n_features)
    for i in np.flatnonzero(options == 0)[:1]:
        raise InfeasibleError(_no_candidate(table, int(i)))
    # HiGHS lets go of the GIL while it solves: meanwhile, on another core, work out what
    # does not depend on the plan (the single-tier strategies, every violation in words).
    # The solver only reads the table; this thread only fills the table's own caches.
    with ThreadPoolExecutor(max_workers=1) as pool:
        solving = pool.submit(_timed_solve, table, feasible)
        choices = {name: strategy(table, p) for name, p in STRATEGY_NAMES.items()}
        strategies = {name: evaluate_assignment(table, name, choices[name]) for name in choices}
        describe(table, np.flatnonzero(table.violated))
        solution, t_solve = solving.result()
    choices["tierwise"] = solution.choice
    strategies["tierwise"] = outcome = evaluate_assignment(table, "tierwise", solution.choice)
    if explain is None:
        explain = len(spec.features) <= EXPLAIN_BY_RESOLVING
    decisions = _decisions(table, feasible, solution, outcome, explain)
    training = [decide_training(spec, job) for job in spec.training]
    total = time.perf_counter() - clock
    return PlanResult(
        spec=spec.name,
        decisions=decisions,
        strategies=strategies,
        training=training,
        seconds={"estimate": t_estimate, "solve": t_solve, "total": total},
        optimality_gap=solution.gap,
        table=table,
        choices=choices,
    )


def _timed_solve(table: CandidateTable, feasible: Mask) -> tuple[Solution, float]:
    clock = time.perf_counter()
    solution = solve(table, feasible)
    return solution, time.perf_counter() - clock


def strategy(table: CandidateTable, placement: Placement) -> Index:
    """What a team all-in on one tier would run: per feature its best candidate there (the
    fewest broken rules, then the most accurate, then the cheapest), rules or not; any
    candidate when the feature has none on that tier."""
    code = PLACEMENTS.index(placement)
    mine = table.placement == code
    has = np.bincount(table.feature[mine], minlength=table.n_features) > 0
    cands = np.flatnonzero(mine | ~has[table.feature])
    broken = violation_counts(table, cands)
    accuracy = np.nan_to_num(table.accuracy[cands], nan=0.0)
    feature = table.feature[cands]
    order = np.lexsort((cands, table.cost[cands], -accuracy, broken, feature))
    ranked = cands[order]
    first = np.ones(len(ranked), dtype=bool)
    first[1:] = feature[order][1:] != feature[order][:-1]
    return ranked[first]


def _decisions(
    table: CandidateTable,
    feasible: Mask,
    solution: Solution,
    outcome: Outcome,
    explain: bool,
) -> list[FeatureDecision]:
    """Each feature's reason line and every alternative with what ruled it out."""
    labels = [t.label for t in table.templates]
    template = table.template.tolist()
    where_of = [p.value for p in PLACEMENTS]
    placement = table.placement.tolist()
    violated = table.violated.tolist()
    describe(table, np.flatnonzero(table.violated))  # all their words at once
    first, count = table.per_feature()
    choice = solution.choice.tolist()
    decisions = []
    for i, (start, n) in enumerate(zip(first.tolist(), count.tolist(), strict=True)):
        chosen = choice[i]
        alts = []
        for c in range(start, start + n):
            if c == chosen:
                continue
            label, where = labels[template[c]], where_of[placement[c]]
            if violated[c]:
                alts.append(Alternative(label, where, describe_violations(violations_of(table, c))))
            elif not explain:
                alts.append(Alternative(label, where, "feasible; not the optimum"))
            else:
                alts.append(_priced(table, feasible, solution, i, c, label, where))
        reason = reason_line(PLACEMENTS[placement[chosen]], alts)
        decisions.append(FeatureDecision(outcome.features[i], reason, alts))
    return decisions


def _priced(
    table: CandidateTable,
    feasible: Mask,
    solution: Solution,
    feature: int,
    cand: int,
    label: str,
    where: str,
) -> Alternative:
    """A feasible alternative, priced by re-solving with it pinned."""
    pinned = feasible & (table.feature != feature)
    pinned[cand] = True
    try:
        extra = solve(table, pinned).cost - solution.cost
    except InfeasibleError as exc:
        text = str(exc).removeprefix("no plan meets every hard constraint: ")
        return Alternative(label, where, f"shared capacity: {text}")
    extra = max(extra, 0.0)
    if extra < 0.005:
        why = "same cost; the plan's choice is more accurate or equal (tie)"
    else:
        why = f"costs {fmt_money(extra)}/month more"
    return Alternative(label, where, why, extra)


def _no_candidate(table: CandidateTable, index: int) -> str:
    feature = table.spec.features[index]
    cands = np.flatnonzero(table.feature == index)
    if not cands.size:
        return (
            f"feature {feature.name}: model {feature.model} has no latency or FLOPs figure "
            "for any tier"
        )
    lines = "; ".join(
        f"{table.label(int(c))}: {describe_violations(violations_of(table, int(c)))}" for c in cands
    )
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
