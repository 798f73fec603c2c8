"""The simulator's queues and outages against closed-form queueing theory (fixed seeds).

Arrivals come from the simulator's own Poisson generator, waits from its own FIFO engine,
outages from its own alternating process: what is checked is what `simulate` runs.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import factorial

from tierwise.simulate.arrivals import RateProfile, poisson_times
from tierwise.simulate.outages import alternating
from tierwise.simulate.queues import FifoServers

FLAT = RateProfile(np.array([0.0, 1e12]), np.array([1.0]))


def erlang_c(c: int, load: float) -> float:
    """P(wait) in M/M/c with offered load a = lambda/mu."""
    rho = load / c
    top = load**c / factorial(c) / (1 - rho)
    return float(top / (sum(load**k / factorial(k) for k in range(c)) + top))


def waits(c: int, rho: float, n_target: int, seed: int) -> np.ndarray:
    """Waits of ~n_target customers at an M/M/c queue (mu = 1), fed window by window."""
    rng = np.random.default_rng(seed)
    lam = rho * c
    horizon = n_target / lam
    queue = FifoServers(c)
    out = []
    windows = np.linspace(0.0, horizon, 9)
    for t0, t1 in itertools.pairwise(windows):
        arrive = poisson_times(lam, FLAT, t0, t1, rng)[0]
        arrive = arrive[np.isfinite(arrive)]
        start = queue.serve(arrive, rng.exponential(1.0, len(arrive)))
        out.append(start - arrive)
    w = np.concatenate(out)
    return w[len(w) // 50 :]  # drop the start from empty


def test_mm1_mean_wait_and_p99_match_theory() -> None:
    rho = 0.7
    w = waits(1, rho, 2_000_000, seed=11)
    mean = rho / (1 - rho)  # Wq with mu = 1
    p99 = math.log(rho / 0.01) / (1 - rho)  # P(W > t) = rho exp(-(mu - lambda) t)
    assert w.mean() == pytest.approx(mean, rel=0.03)
    assert np.quantile(w, 0.99) == pytest.approx(p99, rel=0.03)


@pytest.mark.parametrize(("c", "rho"), [(4, 0.75), (8, 0.7)])
def test_mmc_mean_wait_and_p99_match_theory(c: int, rho: float) -> None:
    w = waits(c, rho, 3_000_000, seed=12 + c)
    pw = erlang_c(c, rho * c)
    rate = c * (1 - rho)  # the exponential tail of the wait: P(W > t) = C exp(-c mu (1-rho) t)
    assert w.mean() == pytest.approx(pw / rate, rel=0.03)
    assert np.quantile(w, 0.99) == pytest.approx(math.log(pw / 0.01) / rate, rel=0.03)


def test_md1_by_the_interleaved_recursion_matches_pollaczek_khinchine() -> None:
    rng = np.random.default_rng(5)
    rho, n = 0.8, 1_000_000
    arrive = np.cumsum(rng.exponential(1 / rho, n))
    start = FifoServers(1).serve(arrive, 1.0)
    w = (start - arrive)[n // 50 :]
    assert w.mean() == pytest.approx(rho / (2 * (1 - rho)), rel=0.03)


def test_outage_process_gives_the_expected_unavailability() -> None:
    availability, mean_outage = 0.995, 1200.0
    duration = 2e11  # ~830,000 up/down cycles
    outages = alternating(availability, mean_outage, duration, np.random.default_rng(21))
    down = outages.down_in(0.0, duration) / duration
    assert down == pytest.approx(1 - availability, rel=0.01)
    mean_length = float(np.mean(outages.ends - outages.starts))
    assert mean_length == pytest.approx(mean_outage, rel=0.01)
    probe = np.random.default_rng(22).uniform(0.0, duration, 2_000_000)
    assert outages.down(probe).mean() == pytest.approx(1 - availability, rel=0.05)
