"""Has a site's stream moved away from the rows its model was checked on? Binned counts, and the
population stability index with a chance floor.

Binning (shared by the edge, which counts, and the cloud, which tests): every input column has
the edges the package build took from its evaluation rows — the column's minimum, deciles and
just above its maximum — and a value falls in the bin of how many edges are at or below it.
The first and last bins hold values outside the evaluation range: a sensor's gain change lands
there. The edge sends only these counts upstream where raw data may not leave the site: an
integer per bin, never a value.

The test: PSI = sum_b (o_b - e_b) ln(o_b / e_b) over a column's bins, o the observed and e the
reference shares (Siddiqi, *Credit Risk Scorecards*, Wiley 2006: below 0.1 stable, 0.1-0.25
some shift, above 0.25 a significant shift). PSI is the symmetrized Kullback-Leibler
(Jeffreys) divergence, so with n observed and m reference rows drawn from one distribution,
n m / (n + m) * PSI is approximately chi-square with B - 1 degrees of freedom: a small
window has a large PSI by chance (10 bins, 100 rows: about 0.09 on average). A column alarms
only when both hold — PSI above `PSI_ALARM` (big enough to matter) and above the chi-square
quantile at `FALSE_ALARM_P` (not the chance of a small window) — which keeps false alarms rare
when many columns are tested every window. Empty bins get half a row (the usual continuity
correction), so a share of zero does not make the logarithm infinite.

numpy only: the edge agent imports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # the manifest's model is only read here; the package imports this
    from tierwise.package.manifest import DriftReference

PSI_ALARM = 0.25  # Siddiqi's "significant shift"
FALSE_ALARM_P = 1e-6  # per column and window: chance alone crosses the floor this rarely
_Z_FALSE_ALARM = 4.753424  # standard normal upper quantile at 1e-6
PSEUDO_COUNT = 0.5
# Edges of the edge model's top probability: fixed, not deciles — a sure model puts most rows
# at 1.0, where deciles would coincide.
CONFIDENCE_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)


def padded_edges(edges: list[list[float]]) -> NDArray[np.float64]:
    """Per-column edge lists (of different lengths) as one [columns, most edges] array, padded
    with +inf, which no finite value reaches."""
    width = max((len(e) for e in edges), default=0)
    out = np.full((len(edges), width), np.inf)
    for i, e in enumerate(edges):
        out[i, : len(e)] = e
    return out


def bin_counts(edges: NDArray[np.float64], x: NDArray[Any]) -> NDArray[np.int64]:
    """[rows, columns] values -> [columns, most edges + 1] counts: a value's bin is how many of
    its column's edges are at or below it. NaN counts in its column's last bin (above every
    edge), as a value out of range does."""
    values = np.asarray(x, dtype=np.float64)
    if values.ndim == 1:
        values = values[None, :]
    columns, width = edges.shape
    if values.shape[1] != columns:
        raise ValueError(f"{values.shape[1]} input columns, the reference has {columns}")
    nan = np.isnan(values)
    bins = (values[:, :, None] >= edges[None, :, :]).sum(axis=2)
    if nan.any():
        bins = np.where(nan, np.isfinite(edges).sum(axis=1)[None, :], bins)
    flat = bins + np.arange(columns) * (width + 1)
    return np.bincount(flat.ravel(), minlength=columns * (width + 1)).reshape(columns, width + 1)


def confidence_counts(top_probability: NDArray[Any]) -> NDArray[np.int64]:
    """Counts of the top class probability over `CONFIDENCE_EDGES`' bins."""
    p = np.asarray(top_probability, dtype=np.float64).reshape(-1)
    bins = np.searchsorted(np.asarray(CONFIDENCE_EDGES), p, side="right")
    return np.bincount(bins, minlength=len(CONFIDENCE_EDGES) + 1)


def psi(reference: NDArray[Any], observed: NDArray[Any]) -> float:
    """Population stability index of two count vectors over the same bins."""
    e = np.asarray(reference, dtype=np.float64) + PSEUDO_COUNT
    o = np.asarray(observed, dtype=np.float64) + PSEUDO_COUNT
    e /= e.sum()
    o /= o.sum()
    return float(((o - e) * np.log(o / e)).sum())


def chance_floor(bins: int, observed_rows: int, reference_rows: int) -> float:
    """The PSI chance alone exceeds with probability `FALSE_ALARM_P` for this many bins and
    rows: the chi-square quantile (Wilson-Hilferty's approximation) over the effective n."""
    df = max(bins - 1, 1)
    h = 2.0 / (9.0 * df)
    quantile = df * (1.0 - h + _Z_FALSE_ALARM * math.sqrt(h)) ** 3
    effective = observed_rows * reference_rows / max(observed_rows + reference_rows, 1)
    return quantile / max(effective, 1e-12)


@dataclass(frozen=True)
class ColumnShift:
    """One column's test: its PSI, the threshold it had to pass, and whether it did."""

    column: str  # "x17" for input column 17, "confidence" for the top probability
    psi: float
    threshold: float  # max(PSI_ALARM, chance floor)

    @property
    def alarm(self) -> bool:
        return self.psi > self.threshold


def column_shift(
    column: str, reference: NDArray[Any], observed: NDArray[Any], bins: int | None = None
) -> ColumnShift:
    """Test one column's observed counts against its reference counts. `bins` is how many
    bins the column really has (padding bins are empty on both sides and count for nothing)."""
    ref = np.asarray(reference)
    obs = np.asarray(observed)
    used = bins if bins is not None else len(ref)
    floor = chance_floor(used, int(obs.sum()), int(ref.sum()))
    return ColumnShift(column, psi(ref[:used], obs[:used]), max(PSI_ALARM, floor))


def shifts_of_counts(
    reference: DriftReference, inputs: Sequence[Any] | NDArray[Any], confidence: Any, variant: str
) -> list[ColumnShift]:
    """Every input column's observed counts (per column, in the reference's bins; padding
    beyond them is ignored), then the confidence's when the reference has the variant's,
    tested against the reference: the cloud's verdict and the edge's own early look."""
    shifts = []
    for j, ref in enumerate(reference.counts):
        observed = np.asarray(inputs[j])[: len(ref)]
        shifts.append(column_shift(f"x{j}", np.asarray(ref), observed))
    expected = reference.confidence.get(variant)
    if expected is not None:
        shifts.append(column_shift("confidence", np.asarray(expected), np.asarray(confidence)))
    return shifts
