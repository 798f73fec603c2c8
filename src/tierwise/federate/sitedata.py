"""Each site's private data: a label-skewed shard of a real dataset, kept in the site's folder.

The demo federation provisions every site once: scikit-learn's bundled dataset is split over
the sites with a Dirichlet(alpha) draw per class (small alpha -> each site sees few classes,
as plants or hospitals do), then each shard is written to *that site's own directory*. From
then on only the site's ClientApp opens it (`load_shard`); the cloud side never does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tierwise.errors import MissingDependencyError

SHARD_FILE = "shard.npz"
TEST_FRACTION = 0.2
OPERATOR_FRACTION = 0.1  # rows kept by the operator for package evaluation, never at a site
MIN_TRAIN_PER_SITE = 8  # a site with fewer rows cannot fill one mini-batch sensibly


@dataclass(frozen=True)
class Dataset:
    """Features scaled to [0, 1] as float32, integer labels."""

    name: str
    x: NDArray[np.float32]
    y: NDArray[np.int64]
    classes: int


@dataclass(frozen=True)
class Shard:
    """One site's rows: a training part and a held-out part for local evaluation."""

    site: str
    x_train: NDArray[np.float32]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float32]
    y_test: NDArray[np.int64]

    def label_counts(self, classes: int) -> list[int]:
        both = np.concatenate([self.y_train, self.y_test])
        return [int(c) for c in np.bincount(both, minlength=classes)]


def load_dataset(name: str) -> Dataset:
    """A dataset shipped inside scikit-learn (nothing is downloaded)."""
    try:
        from sklearn import datasets
    except ImportError:
        raise MissingDependencyError("federated site data", "federate") from None
    if name != "digits":
        raise ValueError(f'unknown dataset "{name}"; known: digits')
    bunch = datasets.load_digits()
    # 8x8 images with pixel intensities 0..16: a fixed scale every site can apply alone
    x = (np.asarray(bunch.data, dtype=np.float32) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    return Dataset(name=name, x=x, y=y, classes=int(y.max()) + 1)


def split_holdout(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A stratified `fraction` of the rows set apart (the operator's validation set)."""
    rng = np.random.default_rng(seed + 104_729)
    held: list[int] = []
    for c in range(data.classes):
        rows = rng.permutation(np.flatnonzero(data.y == c))
        held.extend(int(i) for i in rows[: round(len(rows) * fraction)])
    mask = np.zeros(len(data.y), bool)
    mask[held] = True
    return (
        Dataset(data.name, data.x[~mask], data.y[~mask], data.classes),
        Dataset(data.name, data.x[mask], data.y[mask], data.classes),
    )


def dirichlet_split(
    y: NDArray[np.int64], sites: int, alpha: float, seed: int
) -> list[NDArray[np.int64]]:
    """Row indices per site; each class is spread over sites by a Dirichlet(alpha) draw.

    Redraws (with the next seed) until every site has enough rows to train and test on.
    """
    classes = int(y.max()) + 1
    minimum = int(np.ceil(MIN_TRAIN_PER_SITE / (1 - TEST_FRACTION))) + 1
    if len(y) < sites * minimum:
        raise ValueError(f"{len(y)} rows cannot be split over {sites} sites")
    for attempt in range(1000):
        rng = np.random.default_rng(seed + attempt)
        parts: list[list[int]] = [[] for _ in range(sites)]
        for c in range(classes):
            rows = rng.permutation(np.flatnonzero(y == c))
            share = rng.dirichlet(np.full(sites, alpha))
            cuts = (np.cumsum(share)[:-1] * len(rows)).astype(int)
            for site, chunk in enumerate(np.split(rows, cuts)):
                parts[site].extend(int(i) for i in chunk)
        if min(len(p) for p in parts) >= minimum:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise ValueError(f"no Dirichlet(alpha={alpha}) split gives every one of {sites} sites data")


def make_shards(dataset: Dataset, sites: list[str], alpha: float, seed: int) -> list[Shard]:
    """Split `dataset` over `sites`, then hold out TEST_FRACTION of each shard for testing."""
    shards = []
    for i, (site, rows) in enumerate(
        zip(sites, dirichlet_split(dataset.y, len(sites), alpha, seed), strict=True)
    ):
        rng = np.random.default_rng(seed * 7919 + i)
        rows = rng.permutation(rows)
        n_test = max(1, round(len(rows) * TEST_FRACTION))
        test, train = rows[:n_test], rows[n_test:]
        shards.append(
            Shard(
                site=site,
                x_train=dataset.x[train],
                y_train=dataset.y[train],
                x_test=dataset.x[test],
                y_test=dataset.y[test],
            )
        )
    return shards


def write_shard(shard: Shard, site_dir: Path, dataset: str, classes: int) -> Path:
    """Store a shard in its site's directory (the only place it will ever be read from)."""
    site_dir.mkdir(parents=True, exist_ok=True)
    path = site_dir / SHARD_FILE
    np.savez(
        path,
        x_train=shard.x_train,
        y_train=shard.y_train,
        x_test=shard.x_test,
        y_test=shard.y_test,
    )
    meta = {"site": shard.site, "dataset": dataset, "classes": classes}
    (site_dir / "shard.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
    return path


def load_shard(site_dir: Path) -> Shard:
    """Read this site's shard; called only inside the site's own ClientApp process."""
    meta = json.loads((site_dir / "shard.json").read_text(encoding="utf-8"))
    with np.load(site_dir / SHARD_FILE) as data:
        return Shard(
            site=str(meta["site"]),
            x_train=data["x_train"].astype(np.float32),
            y_train=data["y_train"].astype(np.int64),
            x_test=data["x_test"].astype(np.float32),
            y_test=data["y_test"].astype(np.int64),
        )


def provision_sites(
    root: Path,
    sites: list[str],
    dataset: str,
    alpha: float,
    seed: int,
    validation: Path | None = None,
) -> tuple[dict[str, Path], int, int]:
    """Give every site its own directory holding its shard.

    OPERATOR_FRACTION of the rows never reach a site: they are the operator's own labelled
    validation set (written to `validation`), used to evaluate and calibrate the package.
    Returns site -> directory, and the number of features and classes (the model's shape).
    """
    data, holdout = split_holdout(load_dataset(dataset), OPERATOR_FRACTION, seed)
    if validation is not None:
        validation.parent.mkdir(parents=True, exist_ok=True)
        np.savez(validation, x=holdout.x, y=holdout.y)
    dirs: dict[str, Path] = {}
    for shard in make_shards(data, sites, alpha, seed):
        site_dir = root / site_dirname(shard.site)
        write_shard(shard, site_dir, dataset, data.classes)
        dirs[shard.site] = site_dir
    return dirs, int(data.x.shape[1]), data.classes


def site_dirname(site: str) -> str:
    """A file-system-safe directory name for a site (spec names are free text)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", site) or "site"
