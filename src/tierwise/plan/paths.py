"""Request paths as columns, one row per (candidate, site): deadlines checked all at once.

A row's latency is network + constant + retransmits + queue wait (latency.py). The network
distribution is shared by many rows — there are only a few: none on the device, the LAN to
a gateway, and the LAN plus one WAN per distinct round-trip figure — so rows carry the index
of theirs (`group`), and every evaluation runs once per distribution over its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from tierwise.plan.columns import Array, Index
from tierwise.plan.latency import MIN_RTO, MSS, Dist, Penalty, Wait, network_dist, queue_wait
from tierwise.plan.percentiles import RowModel, cdf, quantile
from tierwise.plan.table import CLOUD, DEVICE, CandidateTable

NO_NETWORK, LAN = 0, 1  # groups; the LAN plus WAN k is group 2 + k


@dataclass(frozen=True)
class Paths:
    """Rows of request paths; each method is vectorized over all rows."""

    nets: dict[int, Dist]
    group: Index
    const: Array  # transfer + service: the part that does not vary
    servers: Array  # of the shared queue; 0 = no queue
    service: Array  # what the queue wait is scaled by
    up: Array  # (rows, 2): availability of each link on the path
    outage: Array  # (rows, 2): mean outage length of each link (s)
    deadline: Array
    q: Array
    penalty: Penalty

    def __len__(self) -> int:
        return len(self.const)

    @cached_property
    def groups(self) -> list[tuple[Dist, Index]]:
        out = []
        for g in np.flatnonzero(np.bincount(self.group)):  # a few small group numbers
            out.append((self.nets[int(g)], np.flatnonzero(self.group == g)))
        return out

    def take(self, idx: Index) -> Paths:
        """The rows at `idx` (a mask's np.flatnonzero), as their own Paths."""
        return Paths(
            nets=self.nets,
            group=self.group[idx],
            const=self.const[idx],
            servers=self.servers[idx],
            service=self.service[idx],
            up=self.up[idx],
            outage=self.outage[idx],
            deadline=self.deadline[idx],
            q=self.q[idx],
            penalty=self.penalty.take(idx),
        )

    def with_service(self, service: Array) -> Paths:
        return replace(self, service=service)

    def wait(self, idx: Index, rho: Array) -> Wait:
        servers = self.servers[idx]
        queued = servers > 0
        wait = queue_wait(np.where(queued, servers, 1), rho[idx], self.service[idx])
        return Wait(np.where(queued, wait.p, 0.0), wait.scale)

    def cdf(self, rho: Array, t: Array) -> Array:
        """P(latency <= t) while the path is up, at utilization rho."""
        out = np.zeros(len(self))
        for net, idx in self.groups:
            wait = self.wait(idx, rho)
            out[idx] = cdf(net, self.const[idx], wait, self.penalty.take(idx), t[idx])
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

    def _net_bounds(self, y: Array) -> tuple[Array, Array]:
        """Per row: the network's largest atom, and P(network <= y)."""
        hi, below = np.zeros(len(y)), np.zeros(len(y))
        for net, idx in self.groups:
            hi[idx] = net.values[-1]
            cum = np.concatenate([[0.0], np.cumsum(net.weights)])
            below[idx] = cum[np.searchsorted(net.values, y[idx], side="right")]
        return hi, below

    def latency(self, rho: Array, iterations: int = 40) -> Array:
        """Latency at each row's percentile (ignoring outages, which are misses)."""
        out = np.zeros(len(self))
        for net, idx in self.groups:
            wait, pen = self.wait(idx, rho), self.penalty.take(idx)
            out[idx] = quantile(net, self.const[idx], wait, pen, self.q[idx], iterations)
        return out

    def answers(self, rho: Array) -> tuple[Array, Array]:
        """`on_time(rho)` and `latency(rho)` together (their rows share one RowModel)."""
        on_time, latency = np.zeros(len(self)), np.zeros(len(self))
        reach = self.reachable(self.deadline)
        for net, idx in self.groups:
            wait, pen = self.wait(idx, rho), self.penalty.take(idx)
            for rows, model in RowModel.chunks(net, self.const[idx], wait, pen):
                at = idx[rows]
                on_time[at] = reach[at] * model.cdf(self.deadline[at])
                latency[at] = model.quantile(self.q[at])
        return on_time, latency


class LateCheck:
    """Deadline misses of fixed rows at any utilization: exact near the allowed share.

    Most paths are nowhere near their budget. Two cheap bounds settle those: every atom
    at its worst (the slowest network atom, every retransmit) still on time means surely
    fine; the bare network alone already late means surely not. Only the rows in between
    pay for the full sum over atoms. What does not depend on the utilization — links'
    reachability, the network's bounds — is computed once, for checks at many utilizations
    (the bisection for `rho_star`).
    """

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.allowed = 1 - paths.q
        self.reach = paths.reachable(paths.deadline)
        net_max, net_cdf = paths._net_bounds(paths.deadline - paths.const)
        self.slack = paths.deadline - paths.const - paths.penalty.offsets.max(axis=1) - net_max
        self.floor = 1 - self.reach * net_cdf  # late from the network alone: a lower bound
        self.surely_bad = self.floor > self.allowed + 1e-12

    def late(self, rho: Array) -> Array:
        """Share of requests missing the deadline: exact near the allowed share, else a bound."""
        paths, reach = self.paths, self.reach
        wait = paths.wait(np.arange(len(paths)), rho)
        y = self.slack
        with np.errstate(over="ignore"):
            best = np.where(y >= 0, 1 - wait.p * np.exp(-np.maximum(y, 0) / wait.scale), 0.0)
        late = 1 - reach * best  # an upper bound
        late = np.where(self.surely_bad, self.floor, late)  # a lower bound, > allowed
        exact = np.flatnonzero((late > self.allowed + 1e-12) & ~self.surely_bad)
        if exact.size:
            sub = paths.take(exact)
            late[exact] = 1 - reach[exact] * sub.cdf(rho[exact], sub.deadline)
        return late


def local_paths(table: CandidateTable, pairs: Index) -> Paths:
    """The answering path of each pair: what the deadline is checked on.

    On the device: service alone. At the edge (and a cascade's local answer): the LAN, then
    the gateway's queue. In the cloud: LAN and WAN, no queue (it autoscales).
    """
    spec, sites = table.spec, table.sites
    lan = spec.links.device_edge
    c = table.cand[pairs]
    place, site = table.placement[c], table.site[pairs]
    n_bytes = table.features.n_bytes[table.feature[c]]
    service = table.service[c]
    lan_t = 8 * n_bytes / lan.bandwidth
    wan_bw = np.array([w.bandwidth for w in sites.wan])[site]
    on_device, in_cloud = place == DEVICE, place == CLOUD
    const = np.where(
        on_device,
        service,
        np.where(in_cloud, lan_t + 8 * n_bytes / wan_bw + service, lan_t + service),
    )
    group = np.where(on_device, NO_NETWORK, np.where(in_cloud, 2 + sites.net[site], LAN))
    hops = np.where(on_device, 0, np.where(in_cloud, 2, 1))
    return _paths(table, pairs, group, const, table.servers[pairs], service, hops, n_bytes)


def escalation_paths(table: CandidateTable, pairs: Index) -> Paths:
    """A cascade's escalated path: local answer first, then the WAN round trip to the cloud."""
    spec, sites = table.spec, table.sites
    lan = spec.links.device_edge
    c = table.cand[pairs]
    site = table.site[pairs]
    n_bytes = table.features.n_bytes[table.feature[c]]
    wan_bw = np.array([w.bandwidth for w in sites.wan])[site]
    service = table.service[c]
    const = 8 * n_bytes / lan.bandwidth + service + 8 * n_bytes / wan_bw + table.cloud_service[c]
    group = 2 + sites.net[site]
    hops = np.full(len(pairs), 2)
    return _paths(table, pairs, group, const, table.servers[pairs], service, hops, n_bytes)


def _paths(
    table: CandidateTable,
    pairs: Index,
    group: Index,
    const: Array,
    servers: Array,
    service: Array,
    hops: Index,
    n_bytes: Array,
) -> Paths:
    """Rows whose path has `hops` links: 0 none, 1 the LAN, 2 the LAN then the site's WAN."""
    spec, sites = table.spec, table.sites
    lan = spec.links.device_edge
    site = table.site[pairs]
    wans = sites.wan
    wan_up = np.array([w.availability for w in wans])[site]
    wan_outage = np.array([w.mean_outage for w in wans])[site]
    up = np.ones((len(pairs), 2))
    outage = np.zeros((len(pairs), 2))
    up[:, 0] = np.where(hops >= 1, lan.availability, 1.0)
    outage[:, 0] = np.where(hops >= 1, lan.mean_outage, 0.0)
    up[:, 1] = np.where(hops >= 2, wan_up, 1.0)
    outage[:, 1] = np.where(hops >= 2, wan_outage, 0.0)
    p_lan = np.where(hops >= 1, _retransmit(lan.loss, n_bytes), 0.0)
    wan_loss = np.array([w.loss for w in wans])[site]
    p_wan = np.where(hops >= 2, _retransmit(wan_loss, n_bytes), 0.0)
    rto_lan = max(MIN_RTO, 2 * lan.rtt_p50)
    rto_wan = np.maximum(MIN_RTO, 2 * np.array([w.rtt_p50 for w in wans]))[site]
    return Paths(
        nets=_nets(table, group),
        group=group,
        const=const,
        servers=servers,
        service=service,
        up=up,
        outage=outage,
        deadline=table.features.deadline[table.feature[table.cand[pairs]]],
        q=table.features.q[table.feature[table.cand[pairs]]],
        penalty=_penalty(p_lan, p_wan, rto_lan, rto_wan),
    )


def _retransmit(loss: Array | float, n_bytes: Array) -> Array:
    """`latency.retransmit_probability`, vectorized: any segment of the exchange lost."""
    segments = np.maximum(1.0, np.ceil(n_bytes / MSS)) + 1
    with np.errstate(invalid="ignore"):
        p = 1 - (1 - np.asarray(loss, dtype=np.float64)) ** segments
    return np.where(np.asarray(loss) > 0, p, 0.0)


def _penalty(p_lan: Array, p_wan: Array, rto_lan: float, rto_wan: Array) -> Penalty:
    """Retransmit delays as up to four terms: none, the LAN's, the WAN's, both.

    Same terms, order and products as `latency.Penalty.of` for the path [LAN, WAN]; terms
    no row can meet are left out, so a loss-free spec has the single term (0 s, 1).
    """
    zero = np.zeros(len(p_lan))
    terms = [
        (zero, (1 - p_lan) * (1 - p_wan)),
        (np.where(p_lan > 0, zero + rto_lan, 0.0), p_lan * (1 - p_wan)),
        (np.where(p_wan > 0, 0.0 + rto_wan, 0.0), (1 - p_lan) * p_wan),
        (np.where((p_lan > 0) & (p_wan > 0), rto_lan + rto_wan, 0.0), p_lan * p_wan),
    ]
    kept = [t for i, t in enumerate(terms) if i == 0 or t[1].any()]
    offsets = np.stack([o for o, _ in kept], axis=1)
    probs = np.stack([p for _, p in kept], axis=1)
    return Penalty(offsets, probs)


def _nets(table: CandidateTable, group: Index) -> dict[int, Dist]:
    """The network distribution of each group the rows use (built once per table)."""
    cache = table.nets
    lan = table.spec.links.device_edge
    for g in np.flatnonzero(np.bincount(group)).tolist():
        if g in cache:
            continue
        if g == NO_NETWORK:
            cache[g] = network_dist([])
        elif g == LAN:
            cache[g] = network_dist([lan])
        else:
            cache[g] = network_dist([lan, table.sites.nets[g - 2]])
    return cache
