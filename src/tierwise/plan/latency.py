"""Latency distributions as weighted atoms, so percentiles and deadline misses are exact sums.

A request's latency is  network + constant + queue wait, where
- network is a discrete distribution (atoms + weights) built once per path from log-normal
  round trips fitted to p50/p99, summed over hops, with TCP retransmits for packet loss;
- constant is transfer time + service time (inference is close to deterministic);
- queue wait at a c-worker server is 0 with probability 1 - P_wait and exponential otherwise
  (Erlang C for P_wait, Allen-Cunneen for M/D/c: the exponential tail is exact for M/M/c).

Everything is vectorized over rows; `percentiles.py` turns these pieces into each row's
on-time share and latency percentile.
"""

from __future__ import annotations

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

    def __add__(self, other: Dist) -> Dist:
        """Sum of two independent distributions, compressed back to N_ATOMS atoms."""
        values = (self.values[:, None] + other.values[None, :]).ravel()
        weights = (self.weights[:, None] * other.weights[None, :]).ravel()
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
