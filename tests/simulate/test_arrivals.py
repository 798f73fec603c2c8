"""Arrivals follow the rate profile: counts per period, spikes, the daily pattern's mean."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.simulate.arrivals import poisson_times, rate_profile
from tierwise.spec.traffic import Traffic


def test_spike_multiplies_only_its_window_and_its_targets() -> None:
    traffic = Traffic.model_validate(
        {"spikes": [{"start": "10min", "duration": "5min", "factor": 4, "sites": ["a"]}]}
    )
    hit = rate_profile(traffic, 3600.0, "f", "a")
    spared = rate_profile(traffic, 3600.0, "f", "b")
    assert hit.at(np.array([599.0, 601.0, 899.0, 901.0])).tolist() == [1.0, 4.0, 4.0, 1.0]
    assert spared.levels.tolist() == [1.0]
    times = poisson_times(50.0, hit, 0.0, 3600.0, np.random.default_rng(0))[0]
    times = times[np.isfinite(times)]
    inside = ((times >= 600) & (times < 900)).sum()
    assert inside == pytest.approx(50 * 4 * 300, rel=0.03)
    assert len(times) == pytest.approx(50 * (3300 + 4 * 300), rel=0.02)
    assert np.all(np.diff(times) >= 0)


def test_daily_pattern_is_mean_normalized_and_repeats() -> None:
    traffic = Traffic.model_validate({"daily": [1, 1, 4, 2]})
    profile = rate_profile(traffic, 2 * 86400.0, "f", "s")
    assert profile.mean() == pytest.approx(1.0)
    assert profile.at(np.array([3 * 3600.0, 15 * 3600.0, 27 * 3600.0])).tolist() == [
        0.5,
        2.0,
        0.5,
    ]


def test_rows_are_independent_sorted_streams_padded_with_inf() -> None:
    profile = rate_profile(None, 100.0, "f", "s")
    times = poisson_times(2.0, profile, 0.0, 100.0, np.random.default_rng(1), rows=500)
    counts = np.isfinite(times).sum(axis=1)
    assert counts.mean() == pytest.approx(200, rel=0.02)
    assert counts.var() == pytest.approx(200, rel=0.2)  # Poisson: variance = mean
    finite = np.where(np.isfinite(times), times, 1e9)
    assert np.all(np.diff(finite, axis=1) >= 0)
    assert np.all(times[np.isfinite(times)] < 100.0)
