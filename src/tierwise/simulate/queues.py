"""FIFO queues with c identical servers, solved for a whole batch of arrivals with numpy.

The waiting-time recursion of a FIFO queue is sequential (each start depends on the one
before), but it unrolls into prefix operations numpy runs at memory speed:

- one server (Lindley): with C_k the service times before customer k,
  start_k = C_k + max_{j<=k}(a_j - C_j)   — a cumsum and a `maximum.accumulate`;
- c servers, equal service times S: customers leave in the order they start, so customer
  k takes the server customer k-c frees, start_k = max(a_k, start_{k-c} + S): c
  interleaved one-server queues, solved as columns of a (rows, c) array;
- c servers, unequal service times: Kiefer-Wolfowitz (each customer takes the earliest free
  server). Stretches where nobody waits are detected and passed in bulk; only the
  customers who find every server busy go through a heap, one by one.

`FifoServers` keeps the state between batches (when each server frees up), so a long run
is simulated window by window in bounded memory.
"""

from __future__ import annotations

import heapq

import numpy as np

from tierwise.rules._types import FloatArray

FAST_BLOCK = (256, 65536)  # arrivals checked at once for "nobody waits": adapts in this range
HEAP_RUN = 256  # customers a contended stretch goes through the heap before the next check


class FifoServers:
    """c identical servers behind one FIFO queue; `serve` returns each arrival's start time."""

    def __init__(self, servers: int) -> None:
        if servers < 1:
            raise ValueError(f"a queue needs at least one server, got {servers}")
        self.servers = servers
        self.free: FloatArray = np.full(servers, -np.inf)  # sorted: when each server frees up

    def serve(self, arrivals: FloatArray, service: FloatArray | float) -> FloatArray:
        """Start times of `arrivals` (sorted) needing `service` seconds each (array or one)."""
        n = len(arrivals)
        if n == 0:
            return np.zeros(0)
        equal = np.ndim(service) == 0
        s = float(np.asarray(service)) if equal else 0.0
        svc = np.asarray(service, dtype=np.float64)
        if not equal and svc.min() == svc.max():
            equal, s = True, float(svc[0])
        if equal:
            starts = _interleaved(arrivals, s, self.free)
            done = starts[-self.servers :] + s
            self.free = np.sort(np.concatenate([self.free[n:], done]))[-self.servers :]
        elif self.servers == 1:
            svc_arr = np.broadcast_to(svc, (n,))
            starts = lindley(arrivals, svc_arr, self.free[0])
            self.free[0] = starts[-1] + svc_arr[-1]
        else:
            starts, self.free = _kiefer_wolfowitz(arrivals, svc, self.free)
        return starts


def lindley(arrivals: FloatArray, service: FloatArray, free_at: float = -np.inf) -> FloatArray:
    """Start times at one FIFO server that frees up at `free_at` (any service times)."""
    before = np.cumsum(service) - service  # C_k: service of everyone ahead in this batch
    x = arrivals - before
    x[0] = max(x[0], free_at)
    return np.maximum.accumulate(x) + before


def _interleaved(arrivals: FloatArray, service: float, free: FloatArray) -> FloatArray:
    """Equal service at c servers: c one-server queues over every c-th customer."""
    c = len(free)
    n = len(arrivals)
    rows = -(-n // c)
    padded = np.empty(rows * c)
    padded[:n] = arrivals
    padded[n:] = arrivals[-1]  # after the last customer: never read back
    grid = padded.reshape(rows, c).T.copy()  # grid[r, k] = customer k*c + r
    k_service = np.arange(rows) * service
    grid -= k_service
    grid[:, 0] = np.maximum(grid[:, 0], free)
    np.maximum.accumulate(grid, axis=1, out=grid)
    grid += k_service
    return grid.T.reshape(-1)[:n]


def _kiefer_wolfowitz(
    arrivals: FloatArray, service: FloatArray, free: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Unequal service at c servers: bulk where nobody waits, a heap where someone does."""
    n, c = len(arrivals), len(free)
    starts = np.empty(n)
    state = np.sort(free)
    pos = 0
    block = FAST_BLOCK[0]
    while pos < n:
        end = min(pos + block, n)
        a = arrivals[pos:end]
        done = a + service[pos:end]
        # servers busy when each arrives: still busy from before + earlier ones not yet done
        busy = (c - np.searchsorted(state, a, side="right")) + (
            np.arange(len(a)) - np.searchsorted(np.sort(done), a, side="right")
        )
        blocked = np.flatnonzero(busy >= c)
        clear = len(a) if len(blocked) == 0 else int(blocked[0])
        starts[pos : pos + clear] = a[:clear]
        if clear:
            state = np.sort(np.concatenate([state, done[:clear]]))[-c:]
        pos += clear
        # the block follows the stretches between contended moments: long when they are rare
        block = min(max(2 * clear, FAST_BLOCK[0]), FAST_BLOCK[1])
        if pos >= n or clear == len(a):
            continue
        stop = min(pos + HEAP_RUN, n)
        heap = state.tolist()
        arr = arrivals[pos:stop].tolist()
        svc = service[pos:stop].tolist()
        out = starts[pos:stop]
        for i, (t, s) in enumerate(zip(arr, svc, strict=True)):
            begin = t if t > heap[0] else heap[0]
            heapq.heapreplace(heap, begin + s)
            out[i] = begin
        state = np.sort(np.asarray(heap))
        pos = stop
    return starts, state
