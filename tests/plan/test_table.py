"""The columnar candidate table equals the per-candidate definitions it replaces.

Each check recomputes, one candidate and one site at a time in plain Python, what the table
computes for all of them at once: resource use and cost (candidates.py's formulas), the
rules a candidate breaks alone, dominance pruning, and the single-tier strategies.
"""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest
from tests.small_specs import MINIMAL, cascade_model, varied

from tierwise.errors import InfeasibleError
from tierwise.plan.candidates import (
    Candidate,
    SiteUse,
    cloud_cost,
)
from tierwise.plan.estimate import candidate_table
from tierwise.plan.planner import plan, strategy
from tierwise.plan.prune import prune
from tierwise.plan.table import CandidateTable
from tierwise.plan.views import candidate_views, enumerate_candidates
from tierwise.spec import Spec
from tierwise.spec.tiers import Placement
from tierwise.spec.units import SECONDS_PER_MONTH, fmt_bandwidth

from .test_solve import random_spec

SEEDS = range(40)


def _reference_uses(spec: Spec, cand: Candidate) -> tuple[list[tuple[Any, ...]], float]:
    """What one candidate asks of each site, and its own cost, one site at a time."""
    feature = spec.features[cand.feature]
    p = cand.placement
    share = {Placement.CLOUD: 1.0, Placement.CASCADE: cand.escalated}.get(p, 0.0)
    sent = feature.payload + feature.result
    rows, cost = [], 0.0
    for site in spec.feature_sites(feature):
        devices = site.counts.get(feature.device_class, 0)
        if devices == 0:
            continue
        mean = feature.rate * devices
        peak = mean * feature.peak_factor
        up = 0.0
        if p is not Placement.CLOUD and feature.upstream is not None:
            up = feature.upstream.rate * devices * feature.upstream.size
        wan_bps = 8 * (share * peak * sent + up * feature.peak_factor)
        wan_bytes = (share * mean * sent + up) * SECONDS_PER_MONTH
        lan_bps = 0.0 if p is Placement.DEVICE else 8 * peak * sent
        if p is Placement.DEVICE:
            busy = feature.rate * feature.peak_factor * cand.service
        elif p is Placement.CLOUD:
            busy = 0.0
        else:
            busy = peak * cand.service
        cloud_s = cand.service if p is Placement.CLOUD else cand.cloud_service
        cloud_busy = share * mean * cloud_s
        index = spec.site_index[site.name]
        rows.append((index, devices, mean, busy, lan_bps, wan_bps, wan_bytes, cloud_busy))
        cost += cloud_cost(spec, share * mean, cloud_busy)
        cost += wan_bytes * spec.wan(site).egress
    return rows, cost


def _traffic(u: SiteUse) -> tuple[float, float, float, float]:
    return (u.lan_bps, u.wan_bps, u.wan_bytes_month, u.cloud_busy)


def _reference_rules(spec: Spec, cand: Candidate, uses: list[tuple[Any, ...]]) -> list[str]:
    """The rules a candidate breaks before its deadlines are checked."""
    feature = spec.features[cand.feature]
    p = cand.placement
    out = []
    if feature.scope == "global" and p is not Placement.CLOUD:
        out.append("needs every site's data (scope: global)")
    if p.raw_data_reaches.rank > feature.raw_data_may_reach.rank:
        out.append(f"raw data may not leave the {feature.raw_data_may_reach.value}")
    if feature.offline and p is Placement.CLOUD:
        out.append("must work offline")
    tier = p.local_tier.value
    limit = {
        "device": spec.tiers.device_class(feature.device_class).memory,
        "edge": spec.tiers.edge.memory,
        "cloud": spec.tiers.cloud.memory,
    }[tier]
    if cand.memory > limit:
        out.append(f"{cand.variant} needs")  # the sizes are checked by prefix below
    model = spec.model(feature.model)
    cloud_variant = cand.cloud_variant
    cloud_size = model.variant(cloud_variant).size if cloud_variant is not None else 0.0
    if p is Placement.CASCADE and cloud_size > spec.tiers.cloud.memory:
        out.append(f"{cloud_variant} does not fit a cloud instance's memory")
    required = feature.min_accuracy
    if required is not None and p is not Placement.CASCADE:
        accuracy = model.variant(cand.variant).accuracy
        if (accuracy or 0.0) < required:
            out.append("accuracy ")
    lan = spec.links.device_edge
    for site_index, *_, lan_bps, wan_bps, _, _ in uses:
        site = spec.sites[site_index]
        wan = spec.wan(site)
        usable = spec.capacity(wan, site) * wan.max_utilization
        if wan_bps > usable:
            out.append(f"WAN at {site.name}: needs {fmt_bandwidth(wan_bps)}")
            break
        if lan_bps > spec.capacity(lan, site) * lan.max_utilization:
            out.append(f"LAN at {site.name}: needs {fmt_bandwidth(lan_bps)}")
            break
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_table_rows_equal_the_per_candidate_formulas(seed: int) -> None:
    spec = random_spec(seed)
    for options in enumerate_candidates(spec):
        for cand in options:
            uses, cost = _reference_uses(spec, cand)
            got = [
                (u.site, u.devices, u.requests_per_s, u.local_busy, *_traffic(u))
                for u in cand.sites
            ]
            assert got == uses, (seed, cand.label)  # same operations, so the same bits
            assert cand.cost == cost, (seed, cand.label)
            expected = _reference_rules(spec, cand, uses)
            assert len(cand.violations) == len(expected), (seed, cand.label, cand.violations)
            for text, prefix in zip(cand.violations, expected, strict=True):
                assert text.startswith(prefix), (seed, cand.label, text, prefix)


def _dominates(a: Candidate, b: Candidate) -> bool:
    eps = 1e-12
    if a.placement is not b.placement or a.cost > b.cost + eps or a.memory > b.memory + eps:
        return False
    return all(
        ua.local_busy <= ub.local_busy + eps
        and ua.wan_bps <= ub.wan_bps + eps
        and ua.lan_bps <= ub.lan_bps + eps
        and ua.rho_star >= ub.rho_star - eps
        for ua, ub in zip(a.sites, b.sites, strict=True)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_pruning_keeps_exactly_the_undominated_candidates(seed: int) -> None:
    spec = random_spec(seed)
    table = candidate_table(spec)
    kept = prune(table, table.feasible)
    for options, cands in zip(candidate_views(table), _groups(table), strict=True):
        feasible = [(c, v) for c, v in zip(cands, options, strict=True) if table.feasible[c]]
        for i, (c, b) in enumerate(feasible):
            beaten = any(
                _dominates(a, b) and (not _dominates(b, a) or j < i)
                for j, (_, a) in enumerate(feasible)
                if j != i
            )
            assert kept[c] == (not beaten), (seed, b.label)


def _groups(table: CandidateTable) -> list[list[int]]:
    first, count = table.per_feature()
    return [list(range(s, s + n)) for s, n in zip(first.tolist(), count.tolist(), strict=True)]


def _object_rule(candidates: list[list[Candidate]], placement: Placement) -> list[Candidate]:
    """Per feature the candidate on that tier with the fewest broken rules, then the most
    accurate, then the cheapest; any candidate when the feature has none on that tier."""
    out = []
    for options in candidates:
        mine = [c for c in options if c.placement is placement] or options
        out.append(min(mine, key=lambda c: (len(c.violations), -(c.accuracy or 0.0), c.cost)))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_single_tier_strategies_match_the_object_rule(seed: int) -> None:
    spec = random_spec(seed)
    table = candidate_table(spec)
    views = candidate_views(table)
    for placement in (Placement.CLOUD, Placement.EDGE):
        expected = [c.label for c in _object_rule(views, placement)]
        got = [table.label(int(c)) for c in strategy(table, placement)]
        assert got == expected, (seed, placement)


def test_plan_keeps_the_cycle_collector_as_it_was(minimal: dict[str, Any]) -> None:
    spec = Spec.model_validate(minimal)
    assert gc.isenabled()
    plan(spec)
    assert gc.isenabled()
    minimal["features"][0].update(raw_data_may_reach="device", deadline="1ms")
    minimal["tiers"]["device"]["memory"] = "100KB"
    with pytest.raises(InfeasibleError):
        plan(Spec.model_validate(minimal))
    assert gc.isenabled()
    gc.disable()
    try:
        plan(spec)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_plan_views_agree_with_its_outcomes() -> None:
    spec = random_spec(5)
    try:
        result = plan(spec)
    except InfeasibleError:
        pytest.skip("this seed has no plan")
    for name in ("tierwise", "cloud-only", "edge-only"):
        labels = [c.label for c in result.strategy_choice(name)]
        assert labels == [o.label for o in result.strategies[name].features]
    assert [c.label for c in result.choice] == [o.label for o in result.plan.features]
    assert np.all(np.isfinite([c.cost for c in result.choice]))


def test_a_candidate_that_tolerates_less_load_is_not_dominated() -> None:
    """Dominance needs every count at least as good, `rho_star` included."""
    for seed in SEEDS:
        table = candidate_table(random_spec(seed))
        kept = prune(table, table.feasible)
        dropped = np.flatnonzero(table.feasible & ~kept)
        if dropped.size:
            break
    else:
        pytest.fail("no random spec prunes anything")
    b = int(dropped[0])
    same = (table.feature == table.feature[b]) & (table.placement == table.placement[b])
    winners = [int(a) for a in np.flatnonzero(same & kept)]
    # make b tolerate more load than every candidate that beat it: nothing dominates it now
    start = int(table.pair_start[b])
    stop = start + int(table.n_pairs[b])
    table.rho_star[start:stop] = 2.0
    assert prune(table, table.feasible)[b]
    for a in winners:
        start = int(table.pair_start[a])
        table.rho_star[start : start + int(table.n_pairs[a])] = 3.0
    assert not prune(table, table.feasible)[b]


def _cascade_spec(max_escalated: str | None = None, **changes: Any) -> Spec:
    """MINIMAL with a cascade small→big along a four-point curve (big fits only the cloud)."""
    model = cascade_model(
        "m",
        {"name": "small", "flops": "3MFLOP", "size": "1MB", "accuracy": "90%"},
        {"name": "big", "flops": "30MFLOP", "size": "8GB", "accuracy": "97%"},
        {"0%": "90%", "5%": "93%", "10%": "95%", "20%": "97%"},
    )
    if max_escalated is not None:
        model["cascade"]["max_escalated"] = max_escalated
    data = varied(MINIMAL, models=[model], features__0__deadline="1s", **changes)
    return Spec.model_validate(data)


def _cascade_shares(spec: Spec) -> list[float]:
    """The escalated shares of the cascade candidates that break no rule."""
    (candidates,) = enumerate_candidates(spec)
    return [
        c.escalated for c in candidates if c.placement is Placement.CASCADE and not c.violations
    ]


def test_an_escalation_budget_rules_out_the_cascade_points_above_it_and_says_why() -> None:
    assert _cascade_shares(_cascade_spec()) == pytest.approx([0.05, 0.10, 0.20])
    assert _cascade_shares(_cascade_spec(max_escalated="10%")) == pytest.approx([0.05, 0.10])
    assert _cascade_shares(_cascade_spec(max_escalated="4%")) == []  # no cascade at all
    (candidates,) = enumerate_candidates(_cascade_spec(max_escalated="10%"))
    over = [c for c in candidates if c.placement is Placement.CASCADE and c.escalated > 0.10]
    assert [c.violations for c in over] == [["escalates 20.0% > budget 10.0%"]]
    # the other placements are untouched by it
    (everything,) = enumerate_candidates(_cascade_spec())
    (within,) = enumerate_candidates(_cascade_spec(max_escalated="4%"))
    others = [c for c in everything if c.placement is not Placement.CASCADE]
    assert [(c.label, c.violations) for c in within if c.placement is not Placement.CASCADE] == [
        (c.label, c.violations) for c in others
    ]


def test_an_escalation_budget_in_requests_per_second_counts_every_site() -> None:
    # MINIMAL: 10 devices at 5/s = 50/s; 4 escalations/s is 8% of them
    spec = _cascade_spec(models__0__cascade__max_escalation_rate="4/s")
    (candidates,) = enumerate_candidates(spec)
    cascade = {c.escalated: c.violations for c in candidates if c.placement is Placement.CASCADE}
    assert cascade[0.05] == []
    for share in (0.10, 0.20):
        assert cascade[share] == [
            f"escalating {share:.1%} of requests exceeds the cloud's budget of 4 escalations/s"
        ]


def test_a_plan_never_escalates_more_than_the_budget_to_reach_an_accuracy_floor() -> None:
    """96% needs the 20% point; under a 10% budget only the big model in the cloud reaches it."""
    floor = {"features__0__min_accuracy": "96%"}
    free = plan(_cascade_spec(**floor)).plan.features[0]
    assert (free.placement, free.escalation_rate) == ("cascade", pytest.approx(0.20))
    capped = plan(_cascade_spec(max_escalated="10%", **floor)).plan.features[0]
    assert (capped.placement, capped.variant) == ("cloud", "big")
