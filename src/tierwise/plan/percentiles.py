"""P(latency <= t) and latency percentiles of many rows at once, exactly over the atoms.

A row's latency is network + constant + retransmit penalty + queue wait (latency.py). Its
cdf at t is a sum over the network's atoms; percentiles bisect on the cdf. Rows without a
queue need only a search over cumulative weights; for many queued rows one pass builds a
table of wait tails per atom (`WaitTails`), after which every cdf is a search too — what
makes 180,000 (candidate, site) rows take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tierwise.plan.latency import Array, Dist, Penalty, Wait

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
