"""`simulate(spec)`: plan, then replay the plan (and the all-cloud / all-edge strategies).

Every strategy sees the same outages (drawn once from the seed), so their differences are
the placements', not luck's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from tierwise.errors import UsageError
from tierwise.plan.planner import PlanResult, plan
from tierwise.simulate.engine import Simulation
from tierwise.simulate.outages import Outages, SiteOutages, alternating, merge
from tierwise.simulate.result import SimResult
from tierwise.spec.model import Link, Spec

STRATEGIES = ("plan", "cloud-only", "edge-only")
PLAN_STRATEGY = {"plan": "tierwise", "cloud-only": "cloud-only", "edge-only": "edge-only"}


def draw_outages(spec: Spec, duration: float, seed: int) -> SiteOutages:
    """Each site's WAN and LAN outages: random ones (unless turned off) and scheduled ones."""
    traffic = spec.traffic
    random_on = traffic is None or traffic.random_outages
    wan, lan = [], []
    for i, site in enumerate(spec.sites):
        per_link = []
        for k, (name, link) in enumerate(
            (("edge_cloud", spec.wan(site)), ("device_edge", spec.links.device_edge))
        ):
            rng = np.random.default_rng([seed, 1, i, k])
            drawn = _random(link, duration, rng) if random_on else Outages.never()
            per_link.append(drawn.union(_scheduled(spec, site.name, name, duration)))
        wan.append(per_link[0])
        lan.append(per_link[1])
    return SiteOutages(wan, lan)


def simulate(
    spec: Spec,
    strategies: Sequence[str] = ("plan",),
    duration: float = 86400.0,
    seed: int = 0,
    progress: Callable[[str, float], None] | None = None,
    planned: PlanResult | None = None,
    only: set[int] | None = None,
) -> tuple[SimResult, PlanResult]:
    """Replay each strategy over `duration` seconds; also return the plan it replays.

    `only` (feature indices) leaves the other features' requests out: a rare feature can
    then be replayed for years alongside just the features it shares queues with.
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise UsageError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}")
    if duration <= 0:
        raise UsageError(f"--duration must be positive, got {duration:g}s")
    clock = time.perf_counter()
    planned = planned or plan(spec)
    # the plan's assignment, or the best one on a single tier, as the planner chose them
    choices = {name: planned.strategy_choice(PLAN_STRATEGY[name]) for name in strategies}
    outages = draw_outages(spec, duration, seed)
    runs = {}
    for name in strategies:
        sim = Simulation(spec, name, choices[name], duration, outages, seed, only)
        tick = (lambda f, n=name: progress(n, f)) if progress is not None else None
        runs[name] = sim.run(tick)
    wall = time.perf_counter() - clock
    return SimResult(spec.name, duration, seed, runs, wall), planned


def _random(link: Link, duration: float, rng: np.random.Generator) -> Outages:
    return alternating(link.availability, link.mean_outage, duration, rng)


def _scheduled(spec: Spec, site: str, link: str, duration: float) -> Outages:
    if spec.traffic is None:
        return Outages.never()
    chosen = [
        o
        for o in spec.traffic.outages
        if o.link == link and (o.sites is None or site in o.sites) and o.start < duration
    ]
    starts = np.array([o.start for o in chosen])
    ends = np.array([min(o.start + o.duration, duration) for o in chosen])
    return merge(starts, ends)
