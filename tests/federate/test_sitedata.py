from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tierwise.federate import sitedata


def test_dirichlet_split_is_a_partition_and_skews_labels_with_small_alpha() -> None:
    data = sitedata.load_dataset("digits")
    parts = sitedata.dirichlet_split(data.y, 10, alpha=0.5, seed=0)
    rows = np.concatenate(parts)
    assert sorted(rows.tolist()) == list(range(len(data.y)))  # every row once, at one site
    skewed = [np.bincount(data.y[p], minlength=10).max() / len(p) for p in parts]
    even = sitedata.dirichlet_split(data.y, 10, alpha=1000.0, seed=0)
    flat = [np.bincount(data.y[p], minlength=10).max() / len(p) for p in even]
    assert np.mean(skewed) > 2 * np.mean(flat)


def test_each_site_gets_its_own_directory_and_the_operator_rows_stay_out(tmp_path: Path) -> None:
    sites = ["plant a", "plant/b", "c"]
    validation = tmp_path / "cloud" / "validation.npz"
    dirs, features, classes = sitedata.provision_sites(
        tmp_path / "sites", sites, "digits", 0.5, 0, validation=validation
    )
    assert (features, classes) == (64, 10)
    assert {d.parent for d in dirs.values()} == {tmp_path / "sites"}
    assert len({d.name for d in dirs.values()}) == 3
    shards = [sitedata.load_shard(dirs[s]) for s in sites]
    assert [s.site for s in shards] == sites
    with np.load(validation) as held:
        held_rows = {r.tobytes() for r in held["x"]}
    site_rows = {r.tobytes() for s in shards for r in np.concatenate([s.x_train, s.x_test])}
    assert held_rows
    assert not held_rows & site_rows
    assert len(held_rows) + len(site_rows) >= 1700  # digits has a few duplicate images


def test_an_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        sitedata.load_dataset("mnist")
