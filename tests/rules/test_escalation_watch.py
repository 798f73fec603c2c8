"""The escalation watch: an exact binomial test of the recent hard share against the plan's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from tierwise.rules.escalation_watch import MIN_ROWS, EscalationWatch


def _fed(planned: float, flags: np.ndarray, window: int = 1000) -> EscalationWatch:
    watch = EscalationWatch(planned, window=window)
    for hard in flags:
        watch.observe(int(hard), 1)
    return watch


@pytest.mark.parametrize("hard", [20, 50, 70, 90])
def test_the_p_value_is_scipys_exact_two_sided_binomial_test(hard: int) -> None:
    check = _fed(0.05, np.arange(1000) < hard).check()
    assert check.rows == 1000
    assert check.observed == hard / 1000
    assert check.p_value == pytest.approx(binomtest(hard, 1000, 0.05).pvalue, rel=1e-6)
    assert check.drifted is (check.p_value < 1e-3)


def test_only_the_last_window_of_rows_counts() -> None:
    watch = _fed(0.05, np.ones(1000, dtype=bool), window=500)  # all hard long ago...
    for _ in range(500):
        watch.observe(0, 1)  # ...then none: the window holds only these
    check = watch.check()
    assert check.rows == 500
    assert check.observed == 0.0


def test_a_request_of_many_rows_counts_each_row() -> None:
    watch = EscalationWatch(0.5, window=1000)
    watch.observe(30, 100)
    watch.observe(70, 100)
    assert watch.check().observed == pytest.approx(0.5)


def test_too_few_rows_never_say_drift() -> None:
    check = _fed(0.01, np.ones(MIN_ROWS - 1, dtype=bool)).check()
    assert check.observed == 1.0
    assert not check.drifted


def test_a_stable_stream_seldom_alarms_and_a_shifted_one_mostly_does() -> None:
    rng = np.random.default_rng(7)
    stable = [_fed(0.05, rng.random(1000) < 0.05).check().drifted for _ in range(200)]
    doubled = [_fed(0.05, rng.random(1000) < 0.10).check().drifted for _ in range(50)]
    assert sum(stable) <= 2  # alpha 0.001: 0.2 expected in 200 windows
    assert sum(doubled) >= 45


def test_a_planned_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="planned share"):
        EscalationWatch(1.5)
