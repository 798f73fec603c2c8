"""Planning: where each AI feature runs and how each training job trains, at the least cost.

`plan(spec)` enumerates every candidate (device, edge, cloud, cascade; per variant and
cascade point), estimates its latency, misses, bandwidth, cost and privacy, places every
feature at once as a MILP over the capacity they share, explains each decision and
compares the plan with cloud-only and edge-only. It returns a `PlanResult`:

    result = plan(load_spec("examples/factory.yaml"))
    result.plan.features         # per feature: its FeatureOutcome (placement, latency, cost)
    result.decisions[0].reason   # why, and each Alternative with what ruled it out
    result.strategy_choice("cloud-only")  # the Candidate per feature of another strategy
    result.to_dict()             # what `tierwise plan --json` writes
    write_html(result, path)     # what `tierwise plan --html` writes

The names load on first use: the solver needs scipy, which `import tierwise` does not pay
for. docs/plan.md explains the model; docs/architecture.md lists the modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierwise.lazy import lazy_names
from tierwise.spec.tiers import Placement

if TYPE_CHECKING:
    from tierwise.plan.candidates import Candidate, SiteUse
    from tierwise.plan.evaluate import FeatureOutcome, Outcome
    from tierwise.plan.explain import Alternative
    from tierwise.plan.html import write_html
    from tierwise.plan.planner import FeatureDecision, PlanResult, plan
    from tierwise.plan.training import TrainingDecision
    from tierwise.plan.views import enumerate_candidates

__all__ = [
    "Alternative",
    "Candidate",
    "FeatureDecision",
    "FeatureOutcome",
    "Outcome",
    "Placement",
    "PlanResult",
    "SiteUse",
    "TrainingDecision",
    "enumerate_candidates",
    "plan",
    "write_html",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Alternative": "explain",
        "Candidate": "candidates",
        "FeatureDecision": "planner",
        "FeatureOutcome": "evaluate",
        "Outcome": "evaluate",
        "PlanResult": "planner",
        "SiteUse": "candidates",
        "TrainingDecision": "training",
        "enumerate_candidates": "views",
        "plan": "planner",
        "write_html": "html",
    },
)
