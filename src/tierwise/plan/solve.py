"""One MILP over all features: the cheapest choice of candidates that fits every shared resource.

Variables
    x[c]      1 if candidate c is chosen (exactly one per feature)
    g[s]      1 if site s runs anything at the edge (its gateways are paid for)
    d[s,k]    1 if devices of class k at site s run anything (their upgrade is paid for)
    u[r]      utilization allowed on shared local resource r (an edge site, a device class)

Constraints, per shared resource r (edge of a site, or devices of a class at a site):
    sum(busy[c] x[c]) <= servers[r] u[r]           load fits the servers
    u[r] <= cap[r] on[r]                           capacity exists only if paid for
    u[r] + (cap - rho_star[c]) x[c] <= cap         a picked candidate's deadline holds
and per site: memory of the models on each tier, LAN and WAN bandwidth. The cloud autoscales,
so its cost is linear in the candidates (`candidates.cloud_cost`).

The matrix is assembled from the candidate table with numpy (rows: one per feature, then per
resource its load row, its on/off row and one or two rows per member, then memory, WAN and
LAN rows), and solved by HiGHS through scipy.optimize.milp. When no solution exists, an
elastic copy of the problem (every capacity may be exceeded at a price) names the
constraints that cannot be met and by how much.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from tierwise.errors import InfeasibleError
from tierwise.plan.columns import Array, Index, Mask
from tierwise.plan.prune import prune, upgrade_accuracy
from tierwise.plan.table import CandidateTable
from tierwise.spec.model import Spec
from tierwise.spec.units import SECONDS_PER_MONTH, fmt_bandwidth, fmt_size

HOURS_PER_MONTH = SECONDS_PER_MONTH / 3600
SHOW_SHORTFALLS = 8


@dataclass(frozen=True)
class Resource:
    """A capacity that several features share; `kind` decides how it is reported."""

    kind: str  # "edge", "device", "memory", "wan", "lan"
    site: int
    detail: str = ""


@dataclass
class Solution:
    choice: Index  # the chosen candidate of each feature
    cost: float  # $/month, everything the plan pays
    gap: float = 0.0  # relative optimality gap: up to RELATIVE_GAP, more if the time limit hit


@dataclass
class _Problem:
    objective: Array
    integrality: Array
    lower: Array
    upper: Array
    entries: list[tuple[Index, Index, Array]]  # (rows, columns, coefficients) blocks
    row_lower: Array
    row_upper: Array
    candidates: Index  # the candidate of each x column (columns 0..len-1)
    slack_cols: dict[int, tuple[Resource, float]]  # elastic only: column -> what it relaxes


def fixed_cost(spec: Spec) -> float:
    """What every plan pays whatever it places: cloud instances kept running."""
    cloud = spec.tiers.cloud
    return cloud.min_instances * (cloud.price_per_hour or 0.0) * HOURS_PER_MONTH


SOLVE_TIME_LIMIT_S = 60.0  # HiGHS stops here and returns its best plan with its gap
# HiGHS stops once its plan is proven within this share of the cheapest. On a fleet where
# shared capacity binds (benchmarks/plan_scale.py, contended: 10,000 features, 100 sites) it
# otherwise spends half its time proving the last 0.007% ($0.14 of $1,952 a month); the gap
# it stops at is reported with the plan. Small specs are still solved exactly in practice.
RELATIVE_GAP = 1e-3


def solve(
    table: CandidateTable,
    feasible: Mask,
    time_limit: float = SOLVE_TIME_LIMIT_S,
    relative_gap: float = RELATIVE_GAP,
) -> Solution:
    """The cheapest assignment of one feasible candidate per feature; InfeasibleError if none."""
    spec = table.spec
    options = np.bincount(table.feature[feasible], minlength=table.n_features)
    for i in np.flatnonzero(options == 0)[:1]:
        raise InfeasibleError(f"feature {spec.features[i].name}: no placement is feasible")
    kept = prune(table, feasible)
    problem = _build(table, kept, elastic=False)
    result = _run(problem, time_limit, relative_gap)
    if result is None:
        raise InfeasibleError(_diagnose(table, kept, time_limit))
    x, gap = result
    picked = problem.candidates[x[: len(problem.candidates)] > 0.5]
    if not np.array_equal(table.feature[picked], np.arange(table.n_features)):
        raise InfeasibleError("the solver returned no integral choice for every feature")
    choice = upgrade_accuracy(table, picked, feasible)
    cost = float(np.dot(problem.objective, x)) + fixed_cost(spec)
    return Solution(choice, cost, gap)


def _build(table: CandidateTable, kept: Mask, elastic: bool) -> _Problem:
    spec = table.spec
    sites = table.sites
    cands = np.flatnonzero(kept)
    n_x = len(cands)
    f = table.feature[cands]
    n_features = table.n_features
    pairs, col = table.pairs_of(cands)  # col: the x column of each pair's candidate
    res = table.resource[pairs]
    local = res >= 0
    m_pair, m_col, m_res = pairs[local], col[local], res[local]
    # shared resources in order of first appearance, and their members in order
    found, first = np.unique(m_res, return_index=True)
    resources = found[np.argsort(first, kind="stable")]
    n_res = len(resources)
    rank = np.zeros(int(resources.max()) + 1 if n_res else 0, dtype=np.int64)
    rank[resources] = np.arange(n_res)
    member_order = np.argsort(rank[m_res], kind="stable")
    m_pair, m_col, m_rank = m_pair[member_order], m_col[member_order], rank[m_res][member_order]

    # resource figures
    r_site, r_class, is_edge = _decode(table, resources)
    tiers = [spec.tiers.device_class(c) for c in table.classes]
    device_cap = np.array([t.max_utilization for t in tiers])
    device_cost = np.array([t.cost for t in tiers])
    device_memory = np.array([t.memory for t in tiers])
    edge = spec.tiers.edge
    r_servers = np.where(is_edge, sites.edge_servers[r_site], 1.0)
    r_cap = np.where(is_edge, edge.max_utilization, device_cap[r_class])
    r_pay = np.where(
        is_edge,
        edge.cost * sites.gateways[r_site],
        device_cost[r_class] * sites.devices[r_site, r_class],
    )
    r_memory = np.where(is_edge, edge.memory, device_memory[r_class])

    # columns: x, then (on, u[, slack]) per resource, then the capacity rows' slacks
    per_res = 3 if elastic else 2
    on_col = n_x + per_res * np.arange(n_res)
    u_col = on_col + 1
    n_cols = n_x + per_res * n_res
    objective = [np.zeros(n_x) if elastic else table.cost[cands]]
    integrality = [np.ones(n_x)]
    lower, upper = [np.zeros(n_x)], [np.ones(n_x)]
    block = np.zeros((n_res, per_res))
    block[:, 0] = 0.0 if elastic else r_pay
    if elastic:
        block[:, 2] = 1.0
    objective.append(block.reshape(-1))
    integrality.append(np.tile([1.0, 0.0, 0.0][:per_res], n_res))
    lower.append(np.zeros(n_res * per_res))
    bounds = np.zeros((n_res, per_res))
    bounds[:, 0], bounds[:, 1] = 1.0, r_cap
    if elastic:
        bounds[:, 2] = np.inf
    upper.append(bounds.reshape(-1))
    slack_cols: dict[int, tuple[Resource, float]] = {}
    if elastic:
        for r in range(n_res):
            kind = "edge" if is_edge[r] else "device"
            detail = "" if is_edge[r] else table.classes[int(r_class[r])]
            slack_cols[int(on_col[r] + 2)] = (
                Resource(kind, int(r_site[r]), detail),
                float(r_cap[r]),
            )

    entries: list[tuple[Index, Index, Array]] = []
    row_lower: list[Array] = []
    row_upper: list[Array] = []
    # one candidate per feature
    entries.append((f, np.arange(n_x), np.ones(n_x)))
    row_lower.append(np.ones(n_features))
    row_upper.append(np.ones(n_features))

    # per resource: load row, on/off row, then each member's x <= on and rho_star rows
    rho_star = table.rho_star[m_pair]
    tight = rho_star < r_cap[m_rank] - 1e-12
    member_rows = 1 + tight.astype(np.int64)
    count_rows = np.bincount(m_rank, weights=member_rows, minlength=n_res).astype(np.int64)
    sizes = 2 + count_rows
    start = n_features + np.cumsum(sizes) - sizes  # each resource's first row
    before = np.cumsum(member_rows) - member_rows  # rows of earlier members, all resources
    n_members = np.bincount(m_rank, minlength=n_res)
    first_member = np.cumsum(n_members) - n_members
    within = before - before[first_member[m_rank]] if len(m_rank) else before
    x_row = start[m_rank] + 2 + within
    load_row = start[m_rank]
    busy = table.local_busy[m_pair] / r_servers[m_rank]
    entries += [
        (load_row, m_col, busy),
        (start, u_col, -np.ones(n_res)),
        (start + 1, u_col, np.ones(n_res)),
        (start + 1, on_col, -r_cap),
        (x_row, m_col, np.ones(len(m_col))),
        (x_row, on_col[m_rank], -np.ones(len(m_col))),
        (x_row[tight] + 1, u_col[m_rank[tight]], np.ones(int(tight.sum()))),
        (x_row[tight] + 1, m_col[tight], r_cap[m_rank[tight]] - rho_star[tight]),
    ]
    if elastic:
        entries.append((start, on_col + 2, -np.ones(n_res)))
    upper_block = np.zeros(int(sizes.sum()))
    upper_block[x_row[tight] + 1 - n_features] = r_cap[m_rank[tight]]
    row_lower.append(np.full(int(sizes.sum()), -np.inf))
    row_upper.append(upper_block)
    n_rows = n_features + int(sizes.sum())

    # capacity rows: memory per resource, then WAN and LAN per site
    capacity = [
        _Capacity("memory", m_rank, m_col, table.memory[table.cand[m_pair]], r_memory, r_site),
    ]
    for kind, use, limit in (
        ("wan", table.wan_bps[pairs], sites.wan_usable),
        ("lan", table.lan_bps[pairs], sites.lan_usable),
    ):
        used = np.flatnonzero(use > 0)
        s = table.site[pairs][used]
        found, first = np.unique(s, return_index=True)
        in_order = found[np.argsort(first, kind="stable")]
        site_rank = np.zeros(len(sites.names), dtype=np.int64)
        site_rank[in_order] = np.arange(len(in_order))
        capacity.append(
            _Capacity(kind, site_rank[s], col[used], use[used], limit[in_order], in_order)
        )
    for cap in capacity:
        n_group = len(cap.limit)
        scale = 1.0 / np.maximum(cap.limit, 1e-12)
        entries.append((n_rows + cap.group, cap.cols, cap.use * scale[cap.group]))
        if elastic:
            slack = n_cols + np.arange(n_group)
            entries.append((n_rows + np.arange(n_group), slack, -np.ones(n_group)))
            objective.append(np.ones(n_group))
            integrality.append(np.zeros(n_group))
            lower.append(np.zeros(n_group))
            upper.append(np.full(n_group, np.inf))
            for i in range(n_group):
                detail = ""
                if cap.kind == "memory":
                    detail = "edge" if is_edge[i] else table.classes[int(r_class[i])]
                owner = Resource(cap.kind, int(cap.site[i]), detail)
                slack_cols[int(slack[i])] = (owner, float(cap.limit[i]))
            n_cols += n_group
        row_lower.append(np.full(n_group, -np.inf))
        row_upper.append(np.ones(n_group))
        n_rows += n_group
    return _Problem(
        objective=np.concatenate(objective),
        integrality=np.concatenate(integrality),
        lower=np.concatenate(lower),
        upper=np.concatenate(upper),
        entries=entries,
        row_lower=np.concatenate(row_lower),
        row_upper=np.concatenate(row_upper),
        candidates=cands,
        slack_cols=slack_cols,
    )


@dataclass
class _Capacity:
    """Rows `sum(use x) <= limit`, one per group, written as shares of the limit."""

    kind: str  # "memory", "wan", "lan"
    group: Index  # the row (within this kind) of each entry
    cols: Index
    use: Array
    limit: Array  # per row
    site: Index  # per row


def _decode(table: CandidateTable, resources: Index) -> tuple[Index, Index, Mask]:
    """Site, device class and edge-or-not of shared resources (see table.resource_id)."""
    n_sites, n_classes = len(table.sites.names), len(table.classes)
    is_edge = resources < n_sites
    device = np.maximum(resources - n_sites, 0)
    site = np.where(is_edge, resources, device // max(n_classes, 1))
    cls = np.where(is_edge, 0, device % max(n_classes, 1))
    return site, cls, is_edge


def _run(
    problem: _Problem, time_limit: float, relative_gap: float = RELATIVE_GAP
) -> tuple[Array, float] | None:
    """Solve; the solution and its optimality gap, or None when nothing is feasible."""
    rows = np.concatenate([r for r, _, _ in problem.entries])
    cols = np.concatenate([c for _, c, _ in problem.entries])
    values = np.concatenate([v for _, _, v in problem.entries])
    shape = (len(problem.row_lower), len(problem.objective))
    a = csr_array((values, (rows, cols)), shape=shape)
    with _native_stdout_to_stderr():
        result = milp(
            c=problem.objective,
            integrality=problem.integrality,
            bounds=Bounds(problem.lower, problem.upper),
            constraints=LinearConstraint(a, problem.row_lower, problem.row_upper),
            options={"time_limit": time_limit, "mip_rel_gap": relative_gap, "presolve": True},
        )
    if result.x is None or result.status not in (0, 1):
        return None
    gap = max(float(getattr(result, "mip_gap", 0.0) or 0.0), 0.0)
    return np.asarray(result.x), gap


def _diagnose(table: CandidateTable, kept: Mask, time_limit: float) -> str:
    """Solve with every capacity elastic; name what had to be exceeded and by how much."""
    problem = _build(table, kept, elastic=True)
    result = _run(problem, time_limit)
    if result is None:
        return "no plan meets every hard constraint (and the diagnosis found no single cause)"
    x = result[0]
    short = []
    for col, (resource, capacity) in problem.slack_cols.items():
        if x[col] > 1e-9:
            # load rows count in utilization, the others in shares of their capacity
            excess = float(x[col]) * (1.0 if resource.kind in {"edge", "device"} else capacity)
            short.append(_shortfall(table.spec, resource, capacity, excess))
    if not short:
        return "no plan meets every hard constraint: deadlines of features sharing a gateway"
    short.sort()
    shown = "; ".join(short[:SHOW_SHORTFALLS])
    if len(short) > SHOW_SHORTFALLS:
        shown += f"; and {len(short) - SHOW_SHORTFALLS} more like these"
    return "no plan meets every hard constraint: " + shown


def _devices(device_class: str) -> str:
    return "devices" if device_class == "device" else f"{device_class} devices"


def _shortfall(spec: Spec, r: Resource, capacity: float, excess: float) -> str:
    site = spec.sites[r.site].name
    need = capacity + excess
    if r.kind == "edge":
        servers = spec.sites[r.site].gateways * spec.tiers.edge.workers
        return (
            f"edge compute at {site}: needs {need * servers:.2f} busy workers, "
            f"has {capacity * servers:.2f} ({capacity:.0%} of {servers}) - "
            f"short by {excess * servers:.2f}"
        )
    if r.kind == "device":
        return f"{_devices(r.detail)} at {site}: need {need:.0%} busy, cap {capacity:.0%}"
    if r.kind == "memory":
        where = "the edge" if r.detail == "edge" else _devices(r.detail)
        return (
            f"memory of {where} at {site}: needs {fmt_size(need)}, has {fmt_size(capacity)}"
            f" - short by {fmt_size(excess)}"
        )
    what = "WAN uplink" if r.kind == "wan" else "LAN"
    return (
        f"{what} at {site}: needs {fmt_bandwidth(need)}, has {fmt_bandwidth(capacity)} usable"
        f" - short by {fmt_bandwidth(excess)}"
    )


@contextlib.contextmanager
def _native_stdout_to_stderr() -> Iterator[None]:
    """HiGHS (inside scipy) prints debug lines from C++ straight to file descriptor 1 on some
    contended problems; `tierwise plan --json -` must keep stdout for the JSON alone."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
