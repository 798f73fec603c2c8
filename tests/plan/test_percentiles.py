"""The fast paths of the per-row cdf and percentiles agree with the plain sum over atoms."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.plan.latency import Penalty, Wait, network_dist, queue_wait
from tierwise.plan.percentiles import (
    TABLE_ROWS,
    RowModel,
    WaitTails,
    _direct_cdf,
    cdf,
    quantile,
)
from tierwise.spec.model import Link

from .links import LAN, WAN


def _rows(n: int, seed: int, queued_share: float) -> tuple[np.ndarray, Wait, Penalty, np.ndarray]:
    rng = np.random.default_rng(seed)
    servers = rng.integers(1, 25, n).astype(float)
    wait = queue_wait(servers, rng.uniform(0.01, 0.99, n), rng.uniform(1e-5, 5e-3, n))
    none = rng.random(n) > queued_share  # rows without a queue (the cloud)
    wait = Wait(np.where(none, 0.0, wait.p), wait.scale)
    const = rng.uniform(1e-5, 2e-3, n)
    penalty = Penalty.of([[(LAN, b), (WAN, b)] for b in rng.uniform(1e2, 1e5, n)])
    t = const + rng.uniform(0.0, 0.6, n)
    return const, wait, penalty, t


@pytest.mark.parametrize("links", [[LAN], [LAN, WAN]])
@pytest.mark.parametrize("queued_share", [0.0, 0.5, 1.0])
def test_the_tail_table_gives_the_same_cdf_as_the_sum_over_atoms(
    links: list[Link], queued_share: float
) -> None:
    net = network_dist(links)
    const, wait, penalty, t = _rows(3000, 1, queued_share)
    direct = _direct_cdf(net, const, wait, penalty, t)
    tails = WaitTails.of(net, wait).cdf(np.arange(len(const)), const, penalty, t)
    assert np.max(np.abs(tails - direct)) < 1e-13
    assert np.max(np.abs(cdf(net, const, wait, penalty, t) - direct)) < 1e-13


def test_percentiles_agree_whichever_path_computes_them() -> None:
    net = network_dist([LAN, WAN])
    const, wait, penalty, _ = _rows(400, 2, 0.7)
    q = np.random.default_rng(3).choice([0.95, 0.99, 0.999], len(const))
    assert np.count_nonzero(wait.p > 0) >= TABLE_ROWS  # the table path
    fast = quantile(net, const, wait, penalty, q)
    few = np.concatenate(
        [
            RowModel.of(
                net,
                const[i : i + 1],
                Wait(wait.p[i : i + 1], wait.scale[i : i + 1]),
                penalty.take(np.array([i])),
            ).quantile(q[i : i + 1])
            for i in range(len(const))
        ]
    )  # one row at a time: the direct sums
    assert fast == pytest.approx(few, rel=1e-9)
    # and each is the q-quantile: the cdf crosses q within the bisection's tolerance
    assert np.all(cdf(net, const, wait, penalty, fast) >= q - 1e-12)
    assert np.all(cdf(net, const, wait, penalty, fast * (1 - 5e-4)) < q)
