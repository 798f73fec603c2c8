"""Latency distributions as weighted atoms, so percentiles and deadline misses are exact sums.

A request's latency is  network + constant + queue wait, where
- network is a discrete distribution (atoms + weights) built once per path from log-normal
  round trips fitted to p50/p99, summed over hops, with TCP retransmits for packet loss;
- constant is transfer time + service time (inference is close to deterministic);
- queue wait at a c-worker server is 0 with probability 1 - P_wait and exponential otherwise
  (Erlang C for P_wait, Allen-Cunneen for M/D/c: the exponential tail is exact for M/M/c).

Everything is vectorized over candidates: a planner with 60,000 candidates evaluates each
deadline with one numpy expression.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

from tierwise.spec.model import Link

Array = NDArray[np.float64]

Z99 = float(ndtri(0.99))
MIN_RTO = 0.2  # Linux TCP minimum retransmission timeout (tcp(7): TCP_RTO_MIN = 200 ms)
MSS = 1448  # bytes of payload per TCP segment on a 1500-byte MTU
N_ATOMS = 256

# Probability bins dense in both tails: a p99.99 deadline still has atoms to land on.
_EDGES = 1 / (1 + np.exp(-np.linspace(-13.0, 13.0, N_ATOMS + 1)))
_EDGES[0], _EDGES[-1] = 0.0, 1.0
_WEIGHTS = np.diff(_EDGES)
_MIDS = (_EDGES[:-1] + _EDGES[1:]) / 2


@dataclass(frozen=True)
class Dist:
    """A discrete distribution: sorted values (seconds) and their probabilities."""

    values: Array
    weights: Array

    @staticmethod
    def zero() -> Dist:
        return Dist(np.zeros(1), np.ones(1))

    def quantile(self, q: float) -> float:
        cum = np.cumsum(self.weights)
        idx = int(np.searchsorted(cum, q * cum[-1] - 1e-15))
        return float(self.values[min(idx, len(self.values) - 1)])

    def mean(self) -> float:
        return float(np.dot(self.values, self.weights))

    def shift(self, seconds: float) -> Dist:
        return Dist(self.values + seconds, self.weights)

    def __add__(self, other: Dist) -> Dist:
        """Sum of two independent distributions, compressed back to N_ATOMS atoms."""
        values = (self.values[:, None] + other.values[None, :]).ravel()
        weights = (self.weights[:, None] * other.weights[None, :]).ravel()
        return _compress(values, weights)

    def mixed(self, other: Dist, p_other: float) -> Dist:
        """With probability p_other draw from `other`, else from self."""
        if p_other <= 0:
            return self
        values = np.concatenate([self.values, other.values])
        weights = np.concatenate([self.weights * (1 - p_other), other.weights * p_other])
        return _compress(values, weights)


def _compress(values: Array, weights: Array) -> Dist:
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    if len(values) <= N_ATOMS:
        return Dist(values, weights / weights.sum())
    cum = np.cumsum(weights) / weights.sum()
    # Each new atom takes the probability of one bin; its value is the bin's mid quantile.
    idx = np.minimum(np.searchsorted(cum, _MIDS), len(values) - 1)
    return Dist(values[idx], _WEIGHTS.copy())


def lognormal_sigma(p50: float, p99: float) -> float:
    return float(np.log(p99 / p50)) / Z99 if p99 > p50 else 0.0


def rtt_dist(link: Link) -> Dist:
    """Round-trip time on a link: log-normal through its p50 and p99."""
    sigma = lognormal_sigma(link.rtt_p50, link.rtt_p99)
    if sigma == 0:
        return Dist(np.array([link.rtt_p50]), np.ones(1))
    values = link.rtt_p50 * np.exp(sigma * ndtri(_MIDS))
    return Dist(values, _WEIGHTS.copy())


def retransmit_probability(link: Link, n_bytes: float) -> float:
    """Chance that at least one segment of a request+response exchange is lost."""
    if link.loss <= 0:
        return 0.0
    segments = max(1.0, np.ceil(n_bytes / MSS)) + 1  # data segments + the answer's
    return float(1 - (1 - link.loss) ** segments)


def rto(link: Link) -> float:
    """Time a lost segment costs: the retransmission timeout, at least 200 ms."""
    return max(MIN_RTO, 2 * link.rtt_p50)


def network_dist(links: list[Link]) -> Dist:
    """Round trips over links in series (retransmits are a separate `Penalty`)."""
    total = Dist.zero()
    for link in links:
        total = total + rtt_dist(link)
    return total


@dataclass(frozen=True)
class Penalty:
    """Extra delay from lost segments: offsets (s) with probabilities, one row per path."""

    offsets: Array  # shape (rows, k)
    probs: Array  # shape (rows, k), rows sum to 1

    @staticmethod
    def none(rows: int) -> Penalty:
        return Penalty(np.zeros((rows, 1)), np.ones((rows, 1)))

    @staticmethod
    def of(hops: list[list[tuple[Link, float]]]) -> Penalty:
        """One row per path; a path is its hops as (link, bytes exchanged on it)."""
        rows = [_hop_penalty(path) for path in hops]
        k = max((len(r) for r in rows), default=1)
        offsets = np.zeros((len(rows), k))
        probs = np.zeros((len(rows), k))
        for i, row in enumerate(rows):
            for j, (offset, prob) in enumerate(row):
                offsets[i, j], probs[i, j] = offset, prob
        return Penalty(offsets, probs)

    def take(self, idx: NDArray[np.int64]) -> Penalty:
        return Penalty(self.offsets[idx], self.probs[idx])


def _hop_penalty(path: list[tuple[Link, float]]) -> list[tuple[float, float]]:
    terms = [(0.0, 1.0)]
    for link, n_bytes in path:
        p = retransmit_probability(link, n_bytes)
        if p <= 0:
            continue
        terms = [(o, q * (1 - p)) for o, q in terms] + [(o + rto(link), q * p) for o, q in terms]
    return terms


# ---- queueing ----------------------------------------------------------------------------


def erlang_c(servers: Array, load: Array) -> Array:
    """P(an arrival waits) in an M/M/c queue with offered load a = lambda/mu (vectorized).

    Computed with the stable recursion on Erlang B, then converted: C = B / (1 - rho (1 - B)).
    """
    servers = np.asarray(servers, dtype=np.int64)
    load = np.asarray(load, dtype=np.float64)
    result = np.zeros_like(load)
    counts = np.flatnonzero(np.bincount(np.maximum(servers, 0))) if servers.size else servers
    for c in counts[counts >= 1].tolist():  # a fleet has a few distinct server counts
        rows = np.flatnonzero(servers == c) if len(counts) > 1 else slice(None)
        a = load[rows]
        b = np.ones_like(a)
        for k in range(1, c + 1):
            b = a * b / (k + a * b)
        result[rows] = b
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = load / servers
    with np.errstate(divide="ignore", invalid="ignore"):
        c = result / (1 - rho * (1 - result))
    return np.where(rho >= 1, 1.0, np.clip(c, 0.0, 1.0))


@dataclass(frozen=True)
class Wait:
    """Queue wait: 0 with probability 1 - p, else exponential with mean `scale` (vectorized)."""

    p: Array
    scale: Array

    @staticmethod
    def none(n: int) -> Wait:
        return Wait(np.zeros(n), np.ones(n))


def queue_wait(servers: Array, utilization: Array, service: Array, cs2: float = 0.0) -> Wait:
    """Wait at c servers running at `utilization`, service time `service` (s), SCV cs2.

    M/M/c: P(W > t) = C exp(-c (1 - rho) t / S). For other service-time variability the
    Allen-Cunneen factor (1 + cs2) / 2 scales the mean (and so the tail) of the wait.
    """
    servers = np.asarray(servers, dtype=np.float64)
    rho = np.clip(np.asarray(utilization, dtype=np.float64), 0.0, 0.999999)
    service = np.asarray(service, dtype=np.float64)
    p = erlang_c(servers, rho * servers)
    scale = service * (1 + cs2) / 2 / (servers * (1 - rho))
    return Wait(p, np.maximum(scale, 1e-12))


# ---- evaluating candidates ---------------------------------------------------------------


TABLE_ROWS = 32  # from this many queued rows on, a WaitTails pass beats the direct sum
CHUNK_ROWS = 16384  # rows per WaitTails: its table is atoms x rows floats (32 MB)


def cdf(net: Dist, const: Array, wait: Wait, penalty: Penalty, t: Array) -> Array:
    """P(latency <= t) per row: latency = net + const + penalty + wait."""
    out = np.empty(len(const))
    for rows, model in RowModel.chunks(net, const, wait, penalty):
        out[rows] = model.cdf(t[rows])
    return out


def quantile(
    net: Dist,
    const: Array,
    wait: Wait,
    penalty: Penalty,
    q: Array,
    iterations: int = 40,
    rtol: float = 2e-4,
) -> Array:
    """The q-quantile of latency per row (q may differ by row), by bisection."""
    q = np.broadcast_to(np.asarray(q, dtype=np.float64), const.shape)
    out = np.empty(len(const))
    for rows, model in RowModel.chunks(net, const, wait, penalty):
        out[rows] = model.quantile(q[rows], iterations, rtol)
    return out


@dataclass(frozen=True)
class RowModel:
    """Latency = network + constant + retransmits + queue wait, for rows sharing a network.

    Rows without a queue need only a search over the network's cumulative weights. With
    many queued rows, one pass builds their `WaitTails`; then every cdf — at the deadline,
    or at each bisection step of a quantile — is a search too.
    """

    net: Dist
    const: Array
    wait: Wait
    penalty: Penalty
    tails: WaitTails | None

    @staticmethod
    def of(net: Dist, const: Array, wait: Wait, penalty: Penalty) -> RowModel:
        many = np.count_nonzero(wait.p > 0) >= TABLE_ROWS
        return RowModel(net, const, wait, penalty, WaitTails.of(net, wait) if many else None)

    @staticmethod
    def chunks(
        net: Dist, const: Array, wait: Wait, penalty: Penalty
    ) -> Iterator[tuple[NDArray[np.int64], RowModel]]:
        """Models of at most CHUNK_ROWS rows each (a WaitTails table is atoms x rows)."""
        n = len(const)
        for start in range(0, n, CHUNK_ROWS):
            rows = np.arange(start, min(start + CHUNK_ROWS, n))
            sub = Wait(wait.p[rows], wait.scale[rows])
            yield rows, RowModel.of(net, const[rows], sub, penalty.take(rows))

    def cdf(self, t: Array, rows: NDArray[np.int64] | None = None) -> Array:
        """P(latency <= t) of the given rows (default all)."""
        if rows is None:
            rows = np.arange(len(self.const))
        const, penalty = self.const[rows], self.penalty.take(rows)
        if self.tails is not None:
            return self.tails.cdf(rows, const, penalty, t)
        out = _unqueued_cdf(self.net, const, penalty, t)
        queued = np.flatnonzero(self.wait.p[rows] > 0)
        if queued.size:
            at = rows[queued]
            wait = Wait(self.wait.p[at], self.wait.scale[at])
            out[queued] = _direct_cdf(
                self.net, const[queued], wait, penalty.take(queued), t[queued]
            )
        return out

    def quantile(self, q: Array, iterations: int = 40, rtol: float = 2e-4) -> Array:
        """The q-quantile of each row, by bisection.

        The network's own q-quantile plus the constant is a lower bound (waits and
        retransmits only add); rows where it already holds are done in one step, and each
        further step only evaluates the rows still open.
        """
        net, const, wait, penalty = self.net, self.const, self.wait, self.penalty
        n = len(const)
        cum = np.cumsum(net.weights)
        net_q = net.values[np.minimum(np.searchsorted(cum, q - 1e-12), len(net.values) - 1)]
        lo = const + net_q
        tail_p = np.maximum(wait.p, 1e-300)
        longest = net.values[-1] + penalty.offsets.max(axis=1)
        hi = const + longest + wait.scale * np.log(np.maximum(tail_p / (1 - q), 1.0)) + 1e-9
        every = np.arange(n)
        done = self.cdf(lo, every) >= q
        hi[done] = lo[done]
        active = every[~done]  # rows still bisecting
        for _ in range(iterations):
            if active.size == 0:
                break
            mid = (lo[active] + hi[active]) / 2
            ok = self.cdf(mid, active) >= q[active]
            hi[active] = np.where(ok, mid, hi[active])
            lo[active] = np.where(ok, lo[active], mid)
            active = active[hi[active] - lo[active] > rtol * hi[active]]
        return np.asarray(hi, dtype=np.float64)


def _unqueued_cdf(net: Dist, const: Array, penalty: Penalty, t: Array) -> Array:
    """`cdf` without a queue: the weight of the atoms at or below t - const - penalty."""
    below = np.concatenate([[0.0], np.cumsum(net.weights)])
    total = np.zeros(len(const))
    for j in range(penalty.offsets.shape[1]):
        prob = penalty.probs[:, j]
        if prob.any():
            y = t - const - penalty.offsets[:, j]
            total += prob * below[np.searchsorted(net.values, y, side="right")]
    return total


def _direct_cdf(net: Dist, const: Array, wait: Wait, penalty: Penalty, t: Array) -> Array:
    """`cdf` as the plain sum over atoms of each row (cheapest for a few rows)."""
    total = np.zeros(len(const))
    for j in range(penalty.offsets.shape[1]):
        prob = penalty.probs[:, j]
        if not prob.any():
            continue
        x = (t - const - penalty.offsets[:, j])[:, None] - net.values[None, :]
        with np.errstate(over="ignore"):
            tail = wait.p[:, None] * np.exp(-np.maximum(x, 0) / wait.scale[:, None])
        inside = np.where(x >= 0, 1.0 - tail, 0.0)
        total += prob * (inside @ net.weights)
    return total


@dataclass(frozen=True)
class WaitTails:
    """Per row, the queue-wait tail summed at every network atom, for repeated cdf calls.

    With atoms v_k (weights w_k) and a wait of probability p and mean s,
    P(latency <= y) = sum_{v_k <= y} w_k (1 - p exp(-(y - v_k) / s))
                    = W_m - p S_m exp(-(y - v_m) / s),   v_m the last atom <= y,
    where W_m = w_0 + ... + w_m and S_m = S_(m-1) exp(-(v_m - v_(m-1)) / s) + w_m. One
    pass over the atoms fills S for every queued row; each cdf after that is a search.
    """

    net: Dist
    wait: Wait
    below: Array  # W with a leading 0: below[m + 1] = W_m
    sums: Array  # (atoms, queued rows): S_m
    column: NDArray[np.int64]  # per row, its column in `sums`; -1 without a queue

    @staticmethod
    def of(net: Dist, wait: Wait) -> WaitTails:
        queued = np.flatnonzero(wait.p > 0)
        column = np.full(len(wait.p), -1, dtype=np.int64)
        column[queued] = np.arange(queued.size)
        sums = np.empty((len(net.values), queued.size))
        inverse = 1.0 / wait.scale[queued]
        acc = np.full(queued.size, net.weights[0])
        sums[0] = acc
        for m, step in enumerate(np.diff(net.values) if queued.size else [], start=1):
            acc = acc * np.exp(-step * inverse) + net.weights[m]
            sums[m] = acc
        below = np.concatenate([[0.0], np.cumsum(net.weights)])
        return WaitTails(net, wait, below, sums, column)

    def cdf(self, rows: NDArray[np.int64], const: Array, penalty: Penalty, t: Array) -> Array:
        """`cdf` of some of the rows (their positions in `wait`)."""
        values = self.net.values
        column = self.column[rows]
        queued = np.flatnonzero(column >= 0)
        p, scale = self.wait.p[rows][queued], self.wait.scale[rows][queued]
        total = np.zeros(len(rows))
        for j in range(penalty.offsets.shape[1]):
            prob = penalty.probs[:, j]
            if not prob.any():
                continue
            y = t - const - penalty.offsets[:, j]
            m = np.searchsorted(values, y, side="right") - 1
            part = np.where(m >= 0, self.below[m + 1], 0.0)
            if queued.size:
                at, yq = m[queued], y[queued]
                inside = at >= 0
                at = np.maximum(at, 0)
                with np.errstate(over="ignore", invalid="ignore"):
                    decay = np.exp(-(yq - values[at]) / scale)
                tail = p * self.sums[at, column[queued]] * decay
                part[queued] -= np.where(inside, tail, 0.0)
            total += prob * part
        return total


def sample(
    net_hops: list[tuple[Link, float]],
    const: float,
    wait_p: float,
    wait_scale: float,
    n: int,
    rng: np.random.Generator,
) -> Array:
    """Monte-Carlo latencies of the same model, for checking the analytic numbers."""
    total = np.full(n, const)
    for link, n_bytes in net_hops:
        sigma = lognormal_sigma(link.rtt_p50, link.rtt_p99)
        total += link.rtt_p50 * np.exp(sigma * rng.standard_normal(n))
        lost = rng.random(n) < retransmit_probability(link, n_bytes)
        total += lost * rto(link)
    waits = rng.random(n) < wait_p
    total += waits * rng.exponential(wait_scale, n)
    return total
