"""The analytic latency model agrees with a Monte-Carlo sample of the same model."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.plan.latency import (
    Penalty,
    Wait,
    erlang_c,
    network_dist,
    queue_wait,
    sample,
)
from tierwise.plan.percentiles import quantile
from tierwise.spec.model import Link

from .links import LAN, WAN

N = 1_000_000


def _analytic(hops: list[tuple[Link, float]], const: float, wait: Wait, q: float) -> float:
    net = network_dist([link for link, _ in hops])
    penalty = Penalty.of([hops]) if hops else Penalty.none(1)
    return float(quantile(net, np.array([const]), wait, penalty, np.array([q]))[0])


@pytest.mark.parametrize(
    ("name", "hops", "const", "servers", "rho", "service"),
    [
        ("device M/D/1 at 50%", [], 0.004, 1, 0.5, 0.004),
        ("edge, 4 workers at 70%", [(LAN, 4000.0)], 0.002, 4, 0.7, 0.002),
        ("cloud over LAN+WAN with 1% loss", [(LAN, 64e3), (WAN, 64e3)], 0.03, 0, 0.0, 0.0),
        ("edge at 90%, slow service", [(LAN, 4000.0)], 0.05, 2, 0.9, 0.05),
    ],
)
@pytest.mark.parametrize("q", [0.99, 0.999])
def test_analytic_percentile_matches_monte_carlo_within_5_percent(
    name: str,
    hops: list[tuple[Link, float]],
    const: float,
    servers: int,
    rho: float,
    service: float,
    q: float,
) -> None:
    if servers:
        wait = queue_wait(np.array([servers]), np.array([rho]), np.array([service]))
    else:
        wait = Wait.none(1)
    analytic = _analytic(hops, const, wait, q)
    rng = np.random.default_rng(7)
    samples = sample(hops, const, float(wait.p[0]), float(wait.scale[0]), N, rng)
    measured = float(np.quantile(samples, q))
    assert analytic == pytest.approx(measured, rel=0.05), name


def test_erlang_c_matches_textbook_values() -> None:
    # M/M/2 with offered load 1 erlang: C = 1/3; M/M/1: C = rho.
    c = erlang_c(np.array([2, 1]), np.array([1.0, 0.6]))
    assert c == pytest.approx([1 / 3, 0.6])


def test_mm1_wait_tail_is_exact() -> None:
    # M/M/1 (cs2 = 1): P(W > t) = rho * exp(-(1 - rho) t / S)
    wait = queue_wait(np.array([1]), np.array([0.8]), np.array([0.01]), cs2=1.0)
    assert wait.p[0] == pytest.approx(0.8)
    assert wait.scale[0] == pytest.approx(0.01 / 0.2)


def test_loss_makes_some_requests_wait_for_a_retransmit() -> None:
    lossless = Link(rtt_p50="60ms", rtt_p99="61ms", bandwidth="20Mbps")
    lossy = Link(rtt_p50="60ms", rtt_p99="61ms", bandwidth="20Mbps", loss="5%")
    p50 = _analytic([(lossless, 1000.0)], 0.0, Wait.none(1), 0.99)
    p_lossy = _analytic([(lossy, 1000.0)], 0.0, Wait.none(1), 0.99)
    assert p50 == pytest.approx(0.061, rel=0.02)
    assert p_lossy > 0.25  # 200 ms minimum retransmission timeout on top
