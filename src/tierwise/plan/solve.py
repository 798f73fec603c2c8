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

Solved by HiGHS through scipy.optimize.milp. When no solution exists, an elastic copy of the
problem (every capacity may be exceeded at a price) names the constraints that cannot be met
and by how much.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from tierwise.errors import InfeasibleError
from tierwise.plan.candidates import Candidate, ResourceKey, shared_resource
from tierwise.plan.prune import prune, upgrade_accuracy
from tierwise.spec.model import Spec
from tierwise.spec.units import SECONDS_PER_MONTH, fmt_bandwidth, fmt_size

HOURS_PER_MONTH = SECONDS_PER_MONTH / 3600


@dataclass(frozen=True)
class Resource:
    """A capacity that several features share; `kind` decides how it is reported."""

    kind: str  # "edge", "device", "memory", "wan", "lan", "cloud"
    site: int
    detail: str = ""


@dataclass
class _Rows:
    cols: int = 0
    lb: list[float] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)
    integrality: list[int] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)
    r: list[int] = field(default_factory=list)
    c: list[int] = field(default_factory=list)
    v: list[float] = field(default_factory=list)
    row_lb: list[float] = field(default_factory=list)
    row_ub: list[float] = field(default_factory=list)
    row_name: list[tuple[Resource, float] | None] = field(default_factory=list)

    def var(self, cost: float, lb: float, ub: float, integer: bool) -> int:
        self.objective.append(cost)
        self.lb.append(lb)
        self.ub.append(ub)
        self.integrality.append(1 if integer else 0)
        self.cols += 1
        return self.cols - 1

    def row(
        self,
        terms: list[tuple[int, float]],
        lb: float,
        ub: float,
        name: tuple[Resource, float] | None = None,
    ) -> None:
        i = len(self.row_lb)
        for col, coef in terms:
            self.r.append(i)
            self.c.append(col)
            self.v.append(coef)
        self.row_lb.append(lb)
        self.row_ub.append(ub)
        self.row_name.append(name)


@dataclass
class Solution:
    choice: list[Candidate]  # one per feature
    cost: float  # $/month, everything the plan pays
    gateways_paid: list[int]  # sites whose gateways are used
    gap: float = 0.0  # relative optimality gap; 0 unless the time limit stopped the search


def solve(spec: Spec, feasible: list[list[Candidate]], time_limit: float = 60.0) -> Solution:
    """The cheapest assignment of one feasible candidate per feature; InfeasibleError if none."""
    for i, options in enumerate(feasible):
        if not options:
            raise InfeasibleError(f"feature {spec.features[i].name}: no placement is feasible")
    kept = [prune(options) for options in feasible]
    problem = _build(spec, kept, elastic=False)
    result = _run(problem.rows, time_limit)
    if result is None:
        raise InfeasibleError(_diagnose(spec, kept, time_limit))
    x, gap = result
    choice = [
        next(c for c, col in zip(opts, cols, strict=True) if x[col] > 0.5)
        for opts, cols in zip(kept, problem.x_cols, strict=True)
    ]
    gateways = [s for s, col in problem.gateway_cols.items() if x[col] > 0.5]
    choice = upgrade_accuracy(spec, choice, feasible)
    return Solution(choice, _cost(problem, x) + fixed_cost(spec), gateways, gap)


@dataclass
class _Problem:
    rows: _Rows
    x_cols: list[list[int]]
    gateway_cols: dict[int, int]
    slack_cols: dict[int, tuple[Resource, float]]


SHOW_SHORTFALLS = 8


def fixed_cost(spec: Spec) -> float:
    """What every plan pays whatever it places: cloud instances kept running."""
    cloud = spec.tiers.cloud
    return cloud.min_instances * (cloud.price_per_hour or 0.0) * HOURS_PER_MONTH


def _cost(problem: _Problem, x: np.ndarray) -> float:
    return float(np.dot(problem.rows.objective, x))


def _build(spec: Spec, feasible: list[list[Candidate]], elastic: bool) -> _Problem:
    rows = _Rows()
    x_cols: list[list[int]] = []
    for options in feasible:
        x_cols.append([rows.var(0.0 if elastic else c.cost, 0, 1, True) for c in options])
    for cols in x_cols:
        rows.row([(col, 1.0) for col in cols], 1, 1)

    # shared local resources: the edge of each site, the devices of each class at each site
    shared: dict[ResourceKey, list[tuple[int, float, float]]] = {}
    memory: dict[Resource, list[tuple[int, float]]] = {}
    wan: dict[int, list[tuple[int, float]]] = {}
    lan: dict[int, list[tuple[int, float]]] = {}
    for options, cols in zip(feasible, x_cols, strict=True):
        for cand, col in zip(options, cols, strict=True):
            for use in cand.sites:
                key = shared_resource(spec, cand, use.site)
                if key is not None:
                    shared.setdefault(key, []).append((col, use.local_busy, use.rho_star))
                    mem = Resource("memory", use.site, key[2] or "edge")
                    memory.setdefault(mem, []).append((col, cand.memory))
                if use.wan_bps > 0:
                    wan.setdefault(use.site, []).append((col, use.wan_bps))
                if use.lan_bps > 0:
                    lan.setdefault(use.site, []).append((col, use.lan_bps))

    slack_cols: dict[int, tuple[Resource, float]] = {}

    def slack(resource: Resource, capacity: float) -> list[tuple[int, float]]:
        if not elastic:
            return []
        col = rows.var(1.0, 0, np.inf, False)  # in shares of the capacity
        slack_cols[col] = (resource, capacity)
        return [(col, -1.0)]

    gateway_cols: dict[int, int] = {}
    for key, members in shared.items():
        kind, site, cls = key
        if kind == "edge":
            servers = spec.sites[site].gateways * spec.tiers.edge.workers
            cap = spec.tiers.edge.max_utilization
            pay = 0.0 if elastic else spec.tiers.edge.cost * spec.sites[site].gateways
            resource = Resource("edge", site)
        else:
            tier = spec.tiers.device_class(cls)
            servers, cap = 1, tier.max_utilization
            n_devices = spec.sites[site].device_counts().get(cls, 0)
            pay = 0.0 if elastic else tier.cost * n_devices
            resource = Resource("device", site, cls)
        on = rows.var(pay, 0, 1, True)
        if kind == "edge":
            gateway_cols[site] = on
        u = rows.var(0.0, 0, cap, False)
        # load in units of the capacity: rows stay well scaled for the solver
        load = [(col, busy / servers) for col, busy, _ in members]
        rows.row([*load, (u, -1.0), *slack(resource, cap)], -np.inf, 0)
        rows.row([(u, 1.0), (on, -cap)], -np.inf, 0)
        for col, _, rho_star in members:
            # x <= on for each member: the tight form of "pay for what you use" (without it
            # the LP relaxation pays for a gateway in proportion to its load, a weak bound)
            rows.row([(col, 1.0), (on, -1.0)], -np.inf, 0)
            if rho_star < cap - 1e-12:
                rows.row([(u, 1.0), (col, cap - rho_star)], -np.inf, cap)

    for resource, items in memory.items():
        if resource.detail == "edge":
            limit = spec.tiers.edge.memory
        else:
            limit = spec.tiers.device_class(resource.detail).memory
        _capacity_row(rows, items, limit, slack(resource, limit))
    for site_i, items in wan.items():
        link = spec.wan(spec.sites[site_i])
        limit = spec.capacity(link, spec.sites[site_i]) * link.max_utilization
        _capacity_row(rows, items, limit, slack(Resource("wan", site_i), limit))
    lan_link = spec.links.device_edge
    for site_i, items in lan.items():
        limit = spec.capacity(lan_link, spec.sites[site_i]) * lan_link.max_utilization
        _capacity_row(rows, items, limit, slack(Resource("lan", site_i), limit))
    return _Problem(rows, x_cols, gateway_cols, slack_cols)


def _capacity_row(
    rows: _Rows, items: list[tuple[int, float]], limit: float, slack: list[tuple[int, float]]
) -> None:
    """sum(use x) <= limit, written as shares of the limit (slack is in those units too)."""
    scale = 1.0 / max(limit, 1e-12)
    rows.row([*[(col, use * scale) for col, use in items], *slack], -np.inf, 1.0)


def _run(rows: _Rows, time_limit: float) -> tuple[np.ndarray, float] | None:
    """Solve; the solution and its optimality gap, or None when nothing is feasible."""
    n = rows.cols
    a = coo_array((rows.v, (rows.r, rows.c)), shape=(len(rows.row_lb), n)).tocsr()
    result = milp(
        c=np.asarray(rows.objective),
        integrality=np.asarray(rows.integrality),
        bounds=Bounds(np.asarray(rows.lb), np.asarray(rows.ub)),
        constraints=LinearConstraint(a, np.asarray(rows.row_lb), np.asarray(rows.row_ub)),
        options={"time_limit": time_limit, "mip_rel_gap": 1e-7, "presolve": True},
    )
    if result.x is None or result.status not in (0, 1):
        return None
    gap = float(getattr(result, "mip_gap", 0.0) or 0.0) if result.status == 1 else 0.0
    return np.asarray(result.x), gap


def _diagnose(spec: Spec, feasible: list[list[Candidate]], time_limit: float) -> str:
    """Solve with every capacity elastic; name what had to be exceeded and by how much."""
    problem = _build(spec, feasible, elastic=True)
    result = _run(problem.rows, time_limit)
    if result is None:
        return "no plan meets every hard constraint (and the diagnosis found no single cause)"
    x = result[0]
    short = []
    for col, (resource, capacity) in problem.slack_cols.items():
        if x[col] > 1e-9:
            # load rows count in utilization, the others in shares of their capacity
            excess = float(x[col]) * (1.0 if resource.kind in {"edge", "device"} else capacity)
            short.append(_shortfall(spec, resource, capacity, excess))
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
