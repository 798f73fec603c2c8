"""Latency, deadline misses and cascade accuracy of every candidate at every site it runs.

For each (candidate, site) the request path is: network (LAN, and WAN for the cloud) +
transfer + queue wait + service. A local tier (device, edge gateway) is shared by every
feature placed on it, so its queue depends on the others; instead of guessing their mix,
each (candidate, site) gets `rho_star`: the highest utilization of its local tier at which
its deadline still holds. The solver then keeps every site's utilization under the
`rho_star` of each candidate it picks there — exact for this queue model, and linear.
"""

from __future__ import annotations

import numpy as np

from tierwise.plan.columns import Array
from tierwise.plan.paths import LateCheck, Paths, escalation_paths, local_paths
from tierwise.plan.table import CASCADE, LATE_CAPACITY, LATE_DEADLINE, CandidateTable, build_table
from tierwise.spec.model import Spec

BISECTION_STEPS = 24


def candidate_table(spec: Spec) -> CandidateTable:
    """Every candidate of the spec, enumerated and assessed: what the planner works on."""
    table = build_table(spec)
    assess_table(table)
    return table


def assess_table(table: CandidateTable) -> None:
    """Check every candidate's deadline (and a cascade's accuracy) at every site it runs.

    Marks a candidate that fails alone as violated, and records per pair the utilization
    bound (`rho_star`) the solver must respect when it picks the candidate.
    """
    n = len(table.cand)
    rows = local_paths(table, np.arange(n))
    allowed = 1 - rows.q  # a p99 deadline allows 1% misses
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_own = np.where(rows.servers > 0, table.local_busy / rows.servers, 0.0)
    cap = table.cap
    check = LateCheck(rows)
    ok_own = check.late(rho_own) <= allowed + 1e-12
    ok_cap = check.late(np.maximum(cap, rho_own)) <= allowed + 1e-12
    rho_star = np.where(ok_cap, cap, rho_own)
    todo = np.flatnonzero(ok_own & ~ok_cap & (rows.servers > 0))
    if todo.size:
        sub, sub_allowed = LateCheck(rows.take(todo)), allowed[todo]
        lo, hi = rho_own[todo], cap[todo]
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            ok = sub.late(mid) <= sub_allowed + 1e-12
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        rho_star[todo] = lo
    over = rho_own > cap
    bad = np.flatnonzero(~ok_own | over)
    latency_own = np.full(n, np.nan)
    miss_own = np.full(n, np.nan)
    if bad.size:
        bad_rows = rows.take(bad)
        latency_own[bad] = bad_rows.latency(rho_own[bad], iterations=20)  # only for the text
        miss_own[bad] = 1 - bad_rows.on_time(rho_own[bad])
    table.rho_own, table.rho_star = rho_own, rho_star
    table.late_kind = np.where(over, LATE_CAPACITY, np.where(ok_own, 0, LATE_DEADLINE))
    table.latency_own, table.miss_own = latency_own, miss_own
    late = np.bincount(table.cand, weights=table.late_kind > 0, minlength=table.n_candidates)
    table.violated = table.violated | (late > 0)
    _assess_cascades(table)
    table.mark_assessed()


def _assess_cascades(table: CandidateTable) -> None:
    """A cascade's accuracy counts only escalations answered in time (at its worst site)."""
    table.in_time = np.ones(table.n_candidates)
    table.accuracy_short = np.zeros(table.n_candidates, dtype=bool)
    pairs = np.flatnonzero(table.placement[table.cand] == CASCADE)
    if not pairs.size:
        return
    in_time = escalation_paths(table, pairs).on_time(table.rho_star[pairs])
    np.minimum.at(table.in_time, table.cand[pairs], in_time)
    cands = np.unique(table.cand[pairs])
    base = np.array([t.base_accuracy for t in table.templates])[table.template[cands]]
    joint = table.accuracy[cands]
    joint = np.where(np.isnan(joint), base, joint)
    p = table.in_time[cands]
    table.accuracy[cands] = base + (joint - base) * p  # late or lost escalations answer locally
    required = table.features.min_accuracy[table.feature[cands]]
    short = ~np.isnan(required) & (table.accuracy[cands] < required)
    table.accuracy_short[cands] = short
    table.violated[cands] |= short


def cascade_latency(
    local: Paths, escalated: Paths, share: Array, rho: Array, iterations: int = 40
) -> Array:
    """Latency percentile of cascade answers: a `share` of requests escalates.

    An escalated request is answered by the cloud when that comes back before the deadline,
    else locally at the deadline; while the WAN is down the agent answers locally at once.
    """
    q = local.q

    def mixed_cdf(t: Array) -> Array:
        loc = local.cdf(rho, t)
        # the WAN's share of the escalated path being down: the agent answers locally
        avail = escalated.reachable(t) / np.maximum(local.reachable(t), 1e-12)
        esc = avail * escalated.cdf(rho, t) + (1 - avail) * loc
        esc = np.where(t >= local.deadline, np.maximum(esc, loc), esc)
        return (1 - share) * loc + share * esc

    lo = np.zeros(len(q))
    hi = np.maximum(local.latency(rho), local.deadline) * 1.0001 + 1e-6
    for _ in range(iterations):
        mid = (lo + hi) / 2
        ok = mixed_cdf(mid) >= q
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return hi
