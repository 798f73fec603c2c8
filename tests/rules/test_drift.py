"""Binning and the stability test: no alarm on the reference's own distribution, however many
columns and windows; an alarm on a real shift (a gain change, added noise) of real data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tierwise.package.drift_reference import drift_reference
from tierwise.package.manifest import DriftReference
from tierwise.rules.drift import (
    PSI_ALARM,
    bin_counts,
    chance_floor,
    column_shift,
    confidence_counts,
    padded_edges,
    psi,
)
from tierwise.scenarios import get_scenario


def test_a_value_falls_in_the_bin_of_how_many_edges_are_at_or_below_it() -> None:
    edges = padded_edges([[0.0, 1.0, 2.0], [5.0]])
    x = np.array([[-1.0, 4.0], [0.0, 5.0], [1.5, 9.0], [2.0, np.nan], [np.nan, 5.0]])
    counts = bin_counts(edges, x)
    assert counts.shape == (2, 4)
    assert counts[0].tolist() == [1, 1, 1, 2]  # NaN counts above every edge
    assert counts[1].tolist() == [1, 4, 0, 0]  # only its own two bins; NaN in its last one
    with pytest.raises(ValueError, match="3 input columns, the reference has 2"):
        bin_counts(edges, np.zeros((1, 3)))


def test_confidence_bins_are_fixed_not_deciles() -> None:
    counts = confidence_counts(np.array([0.3, 0.55, 0.999, 1.0, 1.0]))
    assert counts.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 3]  # 0.999 is at the last edge


def test_psi_is_zero_for_the_same_shares_and_finite_with_empty_bins() -> None:
    assert psi(np.array([100, 200, 300]), np.array([10, 20, 30])) == pytest.approx(0.0, abs=1e-3)
    assert np.isfinite(psi(np.array([10, 0, 30]), np.array([0, 40, 0])))


def test_the_chance_floor_falls_with_the_window_and_stays_above_chance() -> None:
    small, large = chance_floor(11, 50, 360), chance_floor(11, 5_000, 360)
    assert small > large > 0
    # at 50 rows chance alone reaches ~0.3 on some column (below); the floor is far above it
    assert small > PSI_ALARM


@pytest.fixture(scope="module")
def digits_reference() -> tuple[np.ndarray, np.ndarray, DriftReference]:
    x, _ = get_scenario("digits").load()
    order = np.random.default_rng(0).permutation(len(x))
    ref, rest = x[order[:360]], x[order[360:]]
    return ref, rest, drift_reference(ref, {"fp32": np.full((len(ref), 10), 0.1)})


Reference = tuple[np.ndarray, np.ndarray, DriftReference]


def _alarms(reference: DriftReference, rows: np.ndarray) -> int:
    counts = bin_counts(padded_edges(reference.edges), rows)
    return sum(
        column_shift(f"x{j}", np.array(ref), counts[j], len(reference.edges[j]) + 1).alarm
        for j, ref in enumerate(reference.counts)
    )


def test_no_column_alarms_on_fresh_rows_of_the_same_data(digits_reference: Reference) -> None:
    _, rest, reference = digits_reference
    # 1,437 unseen digits in windows of 50 to the whole: 64 columns each, not one alarm
    for size in (50, 100, 200, 500, len(rest)):
        for start in range(0, len(rest) - size + 1, size):
            assert _alarms(reference, rest[start : start + size]) == 0, (size, start)


@pytest.mark.parametrize(
    "shift",
    [
        pytest.param(lambda x, rng: x * 1.3, id="sensor gain x1.3"),
        pytest.param(lambda x, rng: x + rng.normal(0, 2.0, x.shape), id="noise sd 2"),
    ],
)
def test_a_real_shift_of_the_same_rows_alarms_within_fifty_rows(
    digits_reference: Reference, shift: Callable[[np.ndarray, np.random.Generator], np.ndarray]
) -> None:
    _, rest, reference = digits_reference
    shifted = shift(rest[:50], np.random.default_rng(1))
    assert _alarms(reference, shifted) >= 10
