"""The package's yardstick for drift: its evaluation rows binned as the edge will bin a stream.

Per input column the edges are the column's minimum, its deciles and the next float above its
maximum (duplicates dropped: a pixel that is always 0 keeps two edges, so any other value
shows), and the rows are counted into those bins; per variant the top probability is counted
over rules/drift.py's fixed confidence bins. Deciles of the evaluation rows make every inner
bin hold about a tenth of them: equal-mass bins, the usual choice for a stability index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tierwise.package.manifest import DriftReference
from tierwise.rules.drift import bin_counts, confidence_counts, padded_edges

DECILES = np.linspace(0.1, 0.9, 9)


def column_edges(column: NDArray[np.floating]) -> list[float]:
    """Minimum, deciles and just above the maximum of one column's finite values."""
    values = np.asarray(column, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return [0.0]  # a column of NaN only: one edge, every value on one side of it
    low, high = float(values.min()), float(values.max())
    inner = np.quantile(values, DECILES)
    edges = np.unique(np.concatenate([[low], inner, [np.nextafter(high, np.inf)]]))
    return [float(e) for e in edges]


def drift_reference(
    x: NDArray[np.floating], probabilities: dict[str, NDArray[np.floating]]
) -> DriftReference:
    """Bin the evaluation inputs `x` and each variant's top probability on them."""
    edges = [column_edges(x[:, j]) for j in range(x.shape[1])]
    counts = bin_counts(padded_edges(edges), x)
    return DriftReference(
        rows=len(x),
        edges=edges,
        counts=[[int(c) for c in counts[j, : len(e) + 1]] for j, e in enumerate(edges)],
        confidence={
            name: [int(c) for c in confidence_counts(np.asarray(p).max(axis=1))]
            for name, p in probabilities.items()
        },
    )


@dataclass(frozen=True)
class FieldReference:
    """A retrained package's yardstick taken from the field instead of its evaluation rows.

    A model retrained for drifted sites (tierwise.learn) is checked against what those sites
    now send: the old version's bin edges with the counts of the sites' feedback summaries
    (integers that already crossed the WAN), and the retrained model's top-probability
    counts on the held-out field rows for its full-precision variants. A quantized variant
    gets none (its confidence is only checked where the cloud has its own counts): an INT8
    softmax tops out below 0.999, so the full model's counts would be a false alarm for it,
    and the field rows that would give its own never leave a site whose data may not.
    """

    edges: list[list[float]]
    counts: list[list[int]]
    confidence: list[int]

    def reference(self, variants: list[str]) -> DriftReference:
        return DriftReference(
            rows=sum(self.counts[0]) if self.counts else 1,
            edges=self.edges,
            counts=self.counts,
            confidence=dict.fromkeys(variants, self.confidence),
        )
