"""Latency, deadline misses and cascade accuracy of every candidate at every site it runs.

For each (candidate, site) the request path is: network (LAN, and WAN for the cloud) +
transfer + queue wait + service. A local tier (device, edge gateway) is shared by every
feature placed on it, so its queue depends on the others; instead of guessing their mix,
each (candidate, site) gets `rho_star`: the highest utilization of its local tier at which
its deadline still holds. The solver then keeps every site's utilization under the
`rho_star` of each candidate it picks there — exact for this queue model, and linear.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from tierwise.plan.candidates import Candidate, Placement, SiteUse
from tierwise.plan.latency import (
    Array,
    Dist,
    Penalty,
    Wait,
    cdf,
    network_dist,
    quantile,
    queue_wait,
)
from tierwise.spec.model import Feature, Link, Spec
from tierwise.spec.units import fmt_duration

BISECTION_STEPS = 24


@dataclass
class PathRows:
    """Request paths as columns, one row per (candidate, site) — vectorized evaluation."""

    nets: dict[Hashable, Dist]
    net_key: list[Hashable] = field(default_factory=list)
    const: list[float] = field(default_factory=list)
    servers: list[float] = field(default_factory=list)  # 0 = no shared queue
    service: list[float] = field(default_factory=list)
    links: list[tuple[Link, ...]] = field(default_factory=list)  # the path, for its outages
    deadline: list[float] = field(default_factory=list)
    q: list[float] = field(default_factory=list)
    hops: list[tuple[tuple[Link, float], ...]] = field(default_factory=list)

    def add(
        self,
        net: Hashable,
        links: list[Link],
        const: float,
        servers: float,
        service: float,
        feature: Feature,
        hops: list[tuple[Link, float]],
    ) -> None:
        if net not in self.nets:
            self.nets[net] = network_dist(links)
        self.net_key.append(net)
        self.const.append(const)
        self.servers.append(servers)
        self.service.append(service)
        self.links.append(tuple(links))
        self.deadline.append(feature.deadline)
        self.q.append(feature.percentile / 100)
        self.hops.append(tuple(hops))

    def freeze(self) -> FrozenRows:
        groups: dict[Hashable, list[int]] = defaultdict(list)
        for i, key in enumerate(self.net_key):
            groups[key].append(i)
        return FrozenRows(
            nets=self.nets,
            groups={k: np.asarray(v, dtype=np.int64) for k, v in groups.items()},
            const=np.asarray(self.const),
            servers=np.asarray(self.servers),
            service=np.asarray(self.service),
            up=_per_path(self.links, lambda link: link.availability, 1.0),
            outage=_per_path(self.links, lambda link: link.mean_outage, 0.0),
            deadline=np.asarray(self.deadline),
            q=np.asarray(self.q),
            penalty=_penalties(self.hops),
        )


@dataclass
class FrozenRows:
    nets: dict[Hashable, Dist]
    groups: dict[Hashable, np.ndarray]
    const: Array
    servers: Array
    service: Array
    up: Array  # (rows, links): availability of each link on the path
    outage: Array  # (rows, links): mean outage length of each link (s)
    deadline: Array
    q: Array
    penalty: Penalty

    def _wait(self, idx: np.ndarray, rho: Array) -> Wait:
        servers = self.servers[idx]
        queued = servers > 0
        wait = queue_wait(np.where(queued, servers, 1), rho[idx], self.service[idx])
        return Wait(np.where(queued, wait.p, 0.0), wait.scale)

    def cdf(self, rho: Array, t: Array) -> Array:
        """P(latency <= t) while the path is up, at utilization rho."""
        out = np.zeros(len(self.const))
        for key, idx in self.groups.items():
            wait = self._wait(idx, rho)
            out[idx] = cdf(self.nets[key], self.const[idx], wait, self.penalty.take(idx), t[idx])
        return out

    def reachable(self, t: Array) -> Array:
        """P(the path is up, or comes back in time for an answer by t).

        A request arriving during an outage is retried when the link returns; outage lengths
        are exponential, so the remaining outage is too (memoryless): it is answered by t
        with probability 1 - exp(-slack / mean outage), slack = t - the path's usual latency.
        """
        slack = np.maximum(t - self.const, 0.0)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            back = np.where(self.outage > 0, 1 - np.exp(-slack / self.outage), 0.0)
        return np.asarray(np.prod(self.up + (1 - self.up) * back, axis=1), dtype=np.float64)

    def on_time(self, rho: Array, t: Array | None = None) -> Array:
        """P(answer by t, default the deadline), outages included, at utilization rho."""
        t = self.deadline if t is None else t
        return self.reachable(t) * self.cdf(rho, t)

    def late(self, rho: Array) -> Array:
        """Share of requests missing the deadline: exact near the allowed share, else a bound.

        Most paths are nowhere near their budget. Two cheap bounds settle those: every atom
        at its worst (the slowest network atom, every retransmit) still on time means surely
        fine; the bare network alone already late means surely not. Only the rows in between
        pay for the full sum over atoms — which makes planning 10,000 features take seconds.
        """
        allowed = 1 - self.q
        reach = self.reachable(self.deadline)
        every = np.arange(len(self.const))
        wait = self._wait(every, rho)
        _, net_max, net_cdf = self._net_bounds(self.deadline - self.const)
        y = self.deadline - self.const - self.penalty.offsets.max(axis=1) - net_max
        with np.errstate(over="ignore"):
            best = np.where(y >= 0, 1 - wait.p * np.exp(-np.maximum(y, 0) / wait.scale), 0.0)
        late = 1 - reach * best  # an upper bound
        surely_bad = 1 - reach * net_cdf > allowed + 1e-12
        late = np.where(surely_bad, 1 - reach * net_cdf, late)  # a lower bound, > allowed
        exact = (late > allowed + 1e-12) & ~surely_bad
        if exact.any():
            idx = np.flatnonzero(exact)
            late[idx] = 1 - _subset(self, exact).on_time(rho[idx])
        return late

    def _net_bounds(self, y: Array) -> tuple[Array, Array, Array]:
        """Per row: the network's smallest and largest atom, and P(network <= y)."""
        lo, hi, below = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y))
        for key, idx in self.groups.items():
            net = self.nets[key]
            lo[idx], hi[idx] = net.values[0], net.values[-1]
            cum = np.concatenate([[0.0], np.cumsum(net.weights)])
            below[idx] = cum[np.searchsorted(net.values, y[idx], side="right")]
        return lo, hi, below

    def latency(self, rho: Array, iterations: int = 40) -> Array:
        """Latency at each row's percentile (ignoring outages, which are misses)."""
        out = np.zeros(len(self.const))
        for key, idx in self.groups.items():
            net, wait, pen = self.nets[key], self._wait(idx, rho), self.penalty.take(idx)
            out[idx] = quantile(net, self.const[idx], wait, pen, self.q[idx], iterations)
        return out


def local_servers(spec: Spec, cand: Candidate, site_index: int) -> float:
    if cand.placement is Placement.DEVICE:
        return 1.0
    if cand.placement is Placement.CLOUD:
        return 0.0
    return float(spec.sites[site_index].gateways * spec.tiers.edge.workers)


def utilization_cap(spec: Spec, cand: Candidate) -> float:
    feature = spec.features[cand.feature]
    if cand.placement is Placement.DEVICE:
        return spec.tiers.device_class(feature.device_class).max_utilization
    if cand.placement is Placement.CLOUD:
        return 1.0
    return spec.tiers.edge.max_utilization


def local_paths(spec: Spec, pairs: list[tuple[Candidate, SiteUse]]) -> FrozenRows:
    """The answering path of each (candidate, site): what the deadline is checked on."""
    rows = PathRows(nets={})
    lan = spec.links.device_edge
    for cand, use in pairs:
        feature = spec.features[cand.feature]
        site = spec.sites[use.site]
        wan = spec.wan(site)
        n_bytes = feature.payload + feature.result
        lan_t = 8 * n_bytes / lan.bandwidth
        servers = local_servers(spec, cand, use.site)
        if cand.placement is Placement.DEVICE:
            rows.add("device", [], cand.service, servers, cand.service, feature, [])
        elif cand.placement is Placement.CLOUD:
            const = lan_t + 8 * n_bytes / wan.bandwidth + cand.service
            rows.add(
                ("cloud", id(wan)),
                [lan, wan],
                const,
                0.0,
                cand.service,
                feature,
                [(lan, n_bytes), (wan, n_bytes)],
            )
        else:  # edge, and the local answer of a cascade
            const = lan_t + cand.service
            hops = [(lan, n_bytes)]
            rows.add("lan", [lan], const, servers, cand.service, feature, hops)
    return rows.freeze()


def escalation_paths(spec: Spec, pairs: list[tuple[Candidate, SiteUse]]) -> FrozenRows:
    """A cascade's escalated path: local answer first, then the WAN round trip to the cloud."""
    rows = PathRows(nets={})
    lan = spec.links.device_edge
    for cand, use in pairs:
        feature = spec.features[cand.feature]
        wan = spec.wan(spec.sites[use.site])
        n_bytes = feature.payload + feature.result
        const = (
            8 * n_bytes / lan.bandwidth
            + cand.service
            + 8 * n_bytes / wan.bandwidth
            + cand.cloud_service
        )
        rows.add(
            ("cloud", id(wan)),
            [lan, wan],
            const,
            local_servers(spec, cand, use.site),
            cand.service,
            feature,
            [(lan, n_bytes), (wan, n_bytes)],
        )
    return rows.freeze()


def assess(spec: Spec, candidates: list[list[Candidate]]) -> None:
    """Check every candidate's deadline (and a cascade's accuracy) at every site it runs.

    Adds a violation to a candidate that fails alone, and records on each SiteUse the
    utilization bound (`rho_star`) the solver must respect when it picks the candidate.
    """
    pairs = [(c, u) for per_feature in candidates for c in per_feature for u in c.sites]
    if not pairs:
        return
    rows = local_paths(spec, pairs)
    allowed = 1 - rows.q  # a p99 deadline allows 1% misses
    busy = np.fromiter((u.local_busy for _, u in pairs), dtype=np.float64, count=len(pairs))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_own = np.where(rows.servers > 0, busy / rows.servers, 0.0)
    caps = {id(c): utilization_cap(spec, c) for per in candidates for c in per}
    cap = np.fromiter((caps[id(c)] for c, _ in pairs), dtype=np.float64, count=len(pairs))
    ok_own = rows.late(rho_own) <= allowed + 1e-12
    ok_cap = rows.late(np.maximum(cap, rho_own)) <= allowed + 1e-12
    rho_star = np.where(ok_cap, cap, rho_own)
    todo = ok_own & ~ok_cap & (rows.servers > 0)
    if todo.any():
        sub, sub_allowed = _subset(rows, todo), allowed[todo]
        lo, hi = rho_own[todo], cap[todo]
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            ok = sub.late(mid) <= sub_allowed + 1e-12
            lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        rho_star[todo] = lo
    bad = ~ok_own | (rho_own > cap)
    latency_own = np.full(len(pairs), np.nan)
    miss_own = np.full(len(pairs), np.nan)
    if bad.any():
        bad_rows = _subset(rows, bad)
        latency_own[bad] = bad_rows.latency(rho_own[bad], iterations=20)  # only for the text
        miss_own[bad] = 1 - bad_rows.on_time(rho_own[bad])
    for i, (cand, use) in enumerate(pairs):
        use.rho_own, use.rho_star = float(rho_own[i]), float(rho_star[i])
        site = spec.sites[use.site].name
        if rho_own[i] > cap[i]:
            tier = "a device" if cand.placement is Placement.DEVICE else f"the edge at {site}"
            _violate(cand, f"{tier} would be {rho_own[i]:.0%} busy > {cap[i]:.0%} cap")
        elif not ok_own[i]:
            feature = spec.features[cand.feature]
            _violate(cand, _deadline_text(feature, latency_own[i], miss_own[i]))
    _assess_cascades(spec, pairs, rho_star)


def _assess_cascades(spec: Spec, pairs: list[tuple[Candidate, SiteUse]], rho_star: Array) -> None:
    idx = [i for i, (c, _) in enumerate(pairs) if c.placement is Placement.CASCADE]
    if not idx:
        return
    sub = [pairs[i] for i in idx]
    in_time = escalation_paths(spec, sub).on_time(rho_star[idx])
    worst: dict[int, float] = {}
    for (cand, _), p in zip(sub, in_time, strict=True):
        worst[id(cand)] = min(worst.get(id(cand), 1.0), float(p))
    for cand, _ in sub:
        if id(cand) not in worst:
            continue
        p = worst.pop(id(cand))
        feature = spec.features[cand.feature]
        base = cascade_base_accuracy(spec, cand)
        joint = cand.accuracy if cand.accuracy is not None else base
        cand.accuracy = base + (joint - base) * p  # late or lost escalations answer locally
        if feature.min_accuracy is not None and cand.accuracy < feature.min_accuracy:
            _violate(
                cand,
                f"accuracy {cand.accuracy:.1%} < required {feature.min_accuracy:.1%} "
                f"({p:.0%} of escalations answered in time)",
            )


def cascade_latency(
    local: FrozenRows, escalated: FrozenRows, share: Array, rho: Array, iterations: int = 40
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


def cascade_base_accuracy(spec: Spec, cand: Candidate) -> float:
    """Accuracy of the edge variant alone: the curve's 0% point, else the variant's figure."""
    model = spec.model(spec.features[cand.feature].model)
    assert model.cascade is not None
    at_zero = [p.accuracy for p in model.cascade.curve if p.escalated == 0]
    if at_zero:
        return at_zero[0]
    edge_acc = model.variant(cand.variant).accuracy
    return edge_acc if edge_acc is not None else 0.0


def _per_path(
    paths: list[tuple[Link, ...]], value: Callable[[Link], float], missing: float
) -> Array:
    """A (rows, 2) array of a link figure along each row's path; few distinct paths exist."""
    # keyed by object identity: the spec's links are few objects shared by many rows, and
    # hashing a pydantic model field by field would cost more than the evaluation
    distinct: dict[tuple[int, ...], int] = {}
    first: dict[int, tuple[Link, ...]] = {}
    index = np.empty(len(paths), dtype=np.int64)
    for row, path in enumerate(paths):
        key = tuple(map(id, path))
        i = distinct.setdefault(key, len(distinct))
        first.setdefault(i, path)
        index[row] = i
    table = np.full((max(len(distinct), 1), 2), missing)
    for i, path in first.items():
        for j, link in enumerate(path):
            table[i, j] = value(link)
    return table[index] if paths else np.zeros((0, 2))


def _penalties(hops: list[tuple[tuple[Link, float], ...]]) -> Penalty:
    """Retransmit penalties per row, computed once per distinct path and payload."""
    if not hops:
        return Penalty.none(0)
    distinct: dict[tuple[tuple[int, float], ...], int] = {}
    first: list[tuple[tuple[Link, float], ...]] = []
    index = np.empty(len(hops), dtype=np.int64)
    for row, path in enumerate(hops):
        key = tuple((id(link), n) for link, n in path)
        i = distinct.setdefault(key, len(distinct))
        if i == len(first):
            first.append(path)
        index[row] = i
    return Penalty.of([list(h) for h in first]).take(index)


def _subset(rows: FrozenRows, mask: np.ndarray) -> FrozenRows:
    keep = np.flatnonzero(mask)
    position = {int(i): j for j, i in enumerate(keep)}
    groups = {}
    for key, idx in rows.groups.items():
        sel = [position[int(i)] for i in idx if int(i) in position]
        if sel:
            groups[key] = np.asarray(sel, dtype=np.int64)
    return FrozenRows(
        nets=rows.nets,
        groups=groups,
        const=rows.const[keep],
        servers=rows.servers[keep],
        service=rows.service[keep],
        up=rows.up[keep],
        outage=rows.outage[keep],
        deadline=rows.deadline[keep],
        q=rows.q[keep],
        penalty=rows.penalty.take(keep),
    )


def _violate(cand: Candidate, text: str) -> None:
    if text not in cand.violations:
        cand.violations.append(text)


def _deadline_text(feature: Feature, latency: float, p_miss: float) -> str:
    pct = f"p{feature.percentile:g}"
    if np.isfinite(latency) and latency > feature.deadline:
        return f"{pct} {fmt_duration(latency)} > budget {fmt_duration(feature.deadline)}"
    return (
        f"misses {p_miss:.2%} of deadlines (outages included) > "
        f"{1 - feature.percentile / 100:.2%} allowed at {pct}"
    )
