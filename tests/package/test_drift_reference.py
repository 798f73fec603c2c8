"""The package's drift yardstick: decile bins of its evaluation rows, checked by the manifest."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tierwise.package.drift_reference import column_edges, drift_reference
from tierwise.package.manifest import DriftReference


def test_edges_are_min_deciles_and_just_above_max() -> None:
    edges = column_edges(np.arange(101, dtype=np.float32))
    assert edges[0] == 0.0
    assert 100.0 < edges[-1] < 100.0001
    assert edges[1:-1] == pytest.approx([10, 20, 30, 40, 50, 60, 70, 80, 90])


def test_a_constant_column_keeps_two_edges_so_any_other_value_shows() -> None:
    assert len(column_edges(np.zeros(50, dtype=np.float32))) == 2
    assert column_edges(np.full(3, np.nan)) == [0.0]


def test_every_row_is_counted_once_per_column_and_per_variant() -> None:
    x = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    p = np.random.default_rng(1).dirichlet(np.ones(3), size=200)
    ref = drift_reference(x, {"fp32": p, "int8": p})
    assert ref.rows == 200
    assert all(sum(c) == 200 for c in ref.counts)
    assert all(len(c) == len(e) + 1 for c, e in zip(ref.counts, ref.edges, strict=True))
    assert sum(ref.confidence["int8"]) == 200
    # equal-mass inner bins: every decile bin holds about a tenth of the rows
    assert all(15 <= c <= 25 for c in ref.counts[0][1:-1])


def test_the_manifest_refuses_counts_that_do_not_add_up() -> None:
    with pytest.raises(ValidationError, match="column 0: 1 edges need 2 counts summing to 3"):
        DriftReference(rows=3, edges=[[0.0]], counts=[[1, 1]], confidence={})
    with pytest.raises(ValidationError, match="edges must increase"):
        DriftReference(rows=2, edges=[[1.0, 1.0]], counts=[[1, 1, 0]], confidence={})


def test_a_field_reference_keeps_the_old_bins_with_the_fields_counts() -> None:
    from tierwise.package.drift_reference import FieldReference

    field = FieldReference(edges=[[0.0, 1.0], [2.0]], counts=[[1, 5, 4], [3, 7]], confidence=[2, 8])
    reference = field.reference(["fp32"])  # the build names its full-precision variants
    assert reference.rows == 10
    assert reference.confidence == {"fp32": [2, 8]}
    with pytest.raises(ValueError, match="summing to 10 rows"):
        FieldReference(edges=[[0.0], [2.0]], counts=[[4, 6], [3, 6]], confidence=[1]).reference(
            ["fp32"]
        )
