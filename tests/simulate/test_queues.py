"""The vectorized FIFO engine against a plain heap simulation, customer by customer."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from tierwise.simulate.queues import FifoServers


def reference(arrive: np.ndarray, service: np.ndarray, c: int) -> np.ndarray:
    free = [-np.inf] * c
    out = []
    for t, s in zip(arrive.tolist(), service.tolist(), strict=True):
        start = max(t, free[0])
        heapq.heapreplace(free, start + s)
        out.append(start)
    return np.asarray(out)


@pytest.mark.parametrize("c", [1, 2, 5])
@pytest.mark.parametrize("kind", ["equal", "exponential", "mixed"])
@pytest.mark.parametrize("rho", [0.3, 0.95, 1.3])
def test_matches_heap_reference_across_batches(c: int, kind: str, rho: float) -> None:
    rng = np.random.default_rng(c * 100 + int(rho * 10))
    n = 20_000
    arrive = np.cumsum(rng.exponential(1.0, n))
    if kind == "equal":
        service = np.full(n, rho * c)
    elif kind == "exponential":
        service = rng.exponential(rho * c, n)
    else:  # two features sharing a gateway: a fast model and a slow one
        slow = rng.random(n) < 0.01
        service = np.where(slow, 50 * rho * c / 1.49, rho * c / 1.49)
    queue = FifoServers(c)
    parts = []
    for idx in np.array_split(np.arange(n), 5):
        given = float(service[0]) if kind == "equal" else service[idx]
        parts.append(queue.serve(arrive[idx], given))
    got = np.concatenate(parts)
    np.testing.assert_allclose(got, reference(arrive, service, c), rtol=0, atol=1e-6)


def test_refuses_zero_servers() -> None:
    with pytest.raises(ValueError, match="at least one server"):
        FifoServers(0)


def test_empty_batch_keeps_state() -> None:
    queue = FifoServers(2)
    queue.serve(np.array([0.0, 0.0]), 5.0)
    assert queue.serve(np.zeros(0), 1.0).size == 0
    assert queue.serve(np.array([1.0]), 1.0).tolist() == [5.0]
