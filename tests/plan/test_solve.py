"""The MILP's answer equals brute-force enumeration; infeasible specs name what is short."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierwise.errors import InfeasibleError
from tierwise.plan.candidates import Candidate
from tierwise.plan.estimate import candidate_table
from tierwise.plan.solve import fixed_cost, solve
from tierwise.plan.table import CandidateTable
from tierwise.plan.views import candidate_view
from tierwise.spec import Spec
from tierwise.spec.tiers import Placement


def random_spec(seed: int) -> Spec:
    """A small spec whose shared capacities are tight enough to bind now and then."""
    r = random.Random(seed)
    models = []
    for m in range(r.randint(1, 2)):
        variants = [
            {
                "name": f"v{v}",
                "flops": f"{r.uniform(1, 100):.1f}MFLOP",
                "size": f"{r.uniform(1, 60):.1f}MB",
                "accuracy": f"{r.uniform(86, 99):.1f}%",
            }
            for v in range(r.randint(1, 2))
        ]
        model: dict[str, Any] = {"name": f"m{m}", "variants": variants}
        if len(variants) == 2 and r.random() < 0.7:
            # a small edge model and a big cloud one that does not fit a gateway
            base = r.uniform(86, 92)
            variants[0]["accuracy"] = f"{base:.1f}%"
            variants[1].update(size="500MB", accuracy=f"{r.uniform(97, 99.5):.1f}%")
            model["cascade"] = {
                "edge": "v0",
                "cloud": "v1",
                "curve": [
                    {"escalated": "10%", "accuracy": f"{base + r.uniform(2, 6):.1f}%"},
                    {"escalated": "30%", "accuracy": f"{base + r.uniform(5, 8):.1f}%"},
                ],
            }
        models.append(model)
    reach = ["device", "site", "cloud"]
    features = []
    for f in range(r.randint(2, 4)):
        feature: dict[str, Any] = {
            "name": f"f{f}",
            "model": r.choice(models)["name"],
            "rate": f"{r.uniform(0.02, 5):.2f}/s",
            "peak_factor": round(r.uniform(1, 3), 2),
            "payload": f"{r.uniform(0.5, 20):.1f}KB",
            "deadline": f"{r.choice([10, 30, 100, 300, 1000, 3000])}ms",
            "percentile": r.choice([95, 99]),
            "raw_data_may_reach": r.choices(reach, weights=[1, 2, 7])[0],
            "offline": r.random() < 0.15,
        }
        if r.random() < 0.5:
            feature["min_accuracy"] = f"{r.uniform(85, 93):.1f}%"
        if r.random() < 0.3:
            feature["upstream"] = {"rate": "1/min", "size": "2KB"}
        features.append(feature)
    cloud: dict[str, Any] = {"compute": "500GFLOP/s", "memory": "32GB"}
    if r.random() < 0.5:
        cloud["price_per_call"] = f"${r.uniform(0.1, 20):.2f}/1M"
    else:
        cloud["price_per_hour"] = f"${r.uniform(0.05, 1):.2f}/h"
    data = {
        "name": f"random-{seed}",
        "tiers": {
            "device": {
                "compute": f"{r.uniform(0.2, 5):.2f}GFLOP/s",
                "memory": f"{r.uniform(2, 80):.0f}MB",
                "cost": f"${r.uniform(0, 3):.2f}/month",
            },
            "edge": {
                "compute": f"{r.uniform(10, 150):.1f}GFLOP/s",
                "memory": f"{r.uniform(20, 150):.0f}MB",
                "workers": r.randint(1, 4),
                "cost": f"${r.uniform(50, 600):.0f}/month",
            },
            "cloud": cloud,
        },
        "sites": [
            {"name": f"s{s}", "devices": r.randint(1, 20), "gateways": r.randint(1, 2)}
            for s in range(r.randint(1, 2))
        ],
        "links": {
            "device_edge": {
                "rtt_p50": "1ms",
                "rtt_p99": f"{r.uniform(2, 10):.1f}ms",
                "bandwidth": f"{r.uniform(20, 500):.0f}Mbps",
            },
            "edge_cloud": {
                "rtt_p50": f"{r.uniform(20, 80):.0f}ms",
                "rtt_p99": f"{r.uniform(100, 400):.0f}ms",
                "bandwidth": f"{r.uniform(5, 100):.1f}Mbps",
                "availability": f"{r.uniform(99, 99.99):.2f}%",
                "mean_outage": "5min",
                "egress": "$0.09/GB",
            },
        },
        "models": models,
        "features": features,
    }
    return Spec.model_validate(data)


def brute_force(spec: Spec, feasible: list[list[Candidate]]) -> float | None:
    """Cheapest assignment by trying them all, checking every shared constraint directly."""
    best: float | None = None
    for choice in itertools.product(*feasible):
        cost = _cost_if_valid(spec, choice)
        if cost is not None and (best is None or cost < best - 1e-9):
            best = cost
    return best


def _cost_if_valid(spec: Spec, choice: tuple[Candidate, ...]) -> float | None:
    busy: dict[tuple[str, int, str], float] = defaultdict(float)
    bound: dict[tuple[str, int, str], float] = {}
    memory: dict[tuple[str, int, str], float] = defaultdict(float)
    wan: dict[int, float] = defaultdict(float)
    lan: dict[int, float] = defaultdict(float)
    cost = fixed_cost(spec) + sum(c.cost for c in choice)
    for cand in choice:
        cls = spec.features[cand.feature].device_class
        for use in cand.sites:
            wan[use.site] += use.wan_bps
            lan[use.site] += use.lan_bps
            if cand.placement is Placement.CLOUD:
                continue
            key = (
                ("device", use.site, cls)
                if cand.placement is Placement.DEVICE
                else ("edge", use.site, "")
            )
            busy[key] += use.local_busy
            memory[key] += cand.memory
            cap = (
                spec.tiers.device_class(cls).max_utilization
                if key[0] == "device"
                else spec.tiers.edge.max_utilization
            )
            bound[key] = min(bound.get(key, cap), use.rho_star)
    for key, load in busy.items():
        kind, site, cls = key
        if kind == "edge":
            servers = spec.sites[site].gateways * spec.tiers.edge.workers
            mem_limit = spec.tiers.edge.memory
            cost += spec.tiers.edge.cost * spec.sites[site].gateways
        else:
            servers = 1
            mem_limit = spec.tiers.device_class(cls).memory
            cost += spec.tiers.device_class(cls).cost * spec.sites[site].device_counts()[cls]
        if load > servers * bound[key] + 1e-9 or memory[key] > mem_limit + 1e-6:
            return None
    for site, bps in wan.items():
        link = spec.wan(spec.sites[site])
        if bps > spec.capacity(link, spec.sites[site]) * link.max_utilization + 1e-6:
            return None
    lan_link = spec.links.device_edge
    for site, bps in lan.items():
        if bps > spec.capacity(lan_link, spec.sites[site]) * lan_link.max_utilization + 1e-6:
            return None
    return cost


def _feasible(spec: Spec) -> tuple[CandidateTable, list[list[Candidate]]]:
    """The planner's candidate table, and its feasible candidates as objects per feature."""
    table = candidate_table(spec)
    first, count = table.per_feature()
    feasible = [
        [candidate_view(table, c) for c in range(s, s + n) if not table.violated[c]]
        for s, n in zip(first.tolist(), count.tolist(), strict=True)
    ]
    assert all(not c.violations for opts in feasible for c in opts)
    return table, feasible


EXACT = 1e-9  # the brute force's own answer, not one within the planner's 0.1%


@settings(max_examples=220, deadline=None, derandomize=True)
@given(st.integers(min_value=0, max_value=2**31))
def test_milp_equals_brute_force(seed: int) -> None:
    spec = random_spec(seed)
    table, feasible = _feasible(spec)
    expected = brute_force(spec, feasible) if all(feasible) else None
    try:
        solution = solve(table, table.feasible, relative_gap=EXACT)
    except InfeasibleError:
        solution = None
    if expected is None:
        assert solution is None, f"seed {seed}: MILP found {solution}, brute force found nothing"
        return
    assert solution is not None, f"seed {seed}: MILP found nothing, brute force {expected}"
    assert solution.cost == pytest.approx(expected, rel=1e-6, abs=1e-6), f"seed {seed}"
    # the MILP's own choice (after its accuracy upgrade) is valid and costs what it says
    chosen = tuple(candidate_view(table, int(c)) for c in solution.choice)
    assert [c.feature for c in chosen] == list(range(len(spec.features)))
    assert all(not c.violations for c in chosen)
    cost = _cost_if_valid(spec, chosen)
    assert cost is not None, f"seed {seed}: the MILP's choice breaks a shared constraint"
    assert cost == pytest.approx(solution.cost, rel=1e-6, abs=1e-6), f"seed {seed}"


def test_random_specs_exercise_both_outcomes() -> None:
    """The property above must not pass vacuously: some specs bind, some are infeasible."""
    outcomes = {"solved": 0, "infeasible": 0, "edge": 0, "cloud": 0, "device": 0, "cascade": 0}
    for seed in range(120):
        spec = random_spec(seed)
        table, _ = _feasible(spec)
        try:
            sol = solve(table, table.feasible)
        except InfeasibleError:
            outcomes["infeasible"] += 1
            continue
        outcomes["solved"] += 1
        for cand in sol.choice:
            outcomes[candidate_view(table, int(cand)).placement.value] += 1
    assert outcomes["solved"] >= 40, outcomes
    assert outcomes["infeasible"] >= 5, outcomes
    assert all(outcomes[p.value] > 0 for p in Placement), outcomes


def test_infeasible_shared_capacity_names_the_constraint(minimal: dict[str, Any]) -> None:
    # two offline features that only fit the edge, and an edge too small for both
    minimal["tiers"]["edge"]["compute"] = "2GFLOP/s"
    minimal["tiers"]["edge"]["workers"] = 1
    minimal["tiers"]["device"]["memory"] = "100KB"
    minimal["features"][0].update(offline=True, rate="25/s", deadline="1s", variants=["int8"])
    second = dict(minimal["features"][0], name="g")
    minimal["features"].append(second)
    spec = Spec.model_validate(minimal)
    table, _ = _feasible(spec)
    with pytest.raises(InfeasibleError) as info:
        solve(table, table.feasible)
    message = str(info.value)
    assert "edge compute at s1" in message
    assert "short by" in message
