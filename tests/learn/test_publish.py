"""The yardstick a retrained package gets: the drifted sites' counts, in one version's bins."""

from __future__ import annotations

import pytest

from tierwise.errors import UnprocessableError
from tierwise.learn.publish import field_reference


def _fed(edges: list[list[float]], inputs: list[list[int]]) -> dict[str, object]:
    return {"feature": "stop", "edges": edges, "inputs": inputs}


def test_the_sites_counts_are_summed_per_bin() -> None:
    edges = [[0.0, 1.0], [5.0]]
    reference = field_reference(
        [_fed(edges, [[1, 2, 3], [4, 2]]), _fed(edges, [[0, 5, 5], [9, 1]])], confidence=[3, 13]
    )
    assert reference.counts == [[1, 7, 8], [13, 3]]
    assert reference.reference(["fp32"]).rows == 16


def test_sites_on_versions_with_other_bins_are_refused() -> None:
    with pytest.raises(UnprocessableError, match="other drift bins"):
        field_reference([_fed([[0.0]], [[1, 1]]), _fed([[0.5]], [[1, 1]])], confidence=[2])
