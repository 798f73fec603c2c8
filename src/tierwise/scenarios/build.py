"""Train a scenario's models to files, and build (and cache) its signed edge and cloud packages.

`train_scenario` writes what `tierwise package` takes as input::

    DIR/<scenario>-edge.joblib    the small model
    DIR/<scenario>-cloud.joblib   the larger one (the cascade's reference)
    DIR/<scenario>-eval.npz       x, y, x_calibration: what the package is measured on
    DIR/<scenario>-test.npz       x, y: held out from everything, for checking claims later

`build_scenario_packages` is what the running continuum calls: it returns two verified
packages — `<scenario>` (edge: fp32 + INT8, cascade curve against the cloud model) and
`<scenario>-cloud` (the cloud model) — and reuses them on later calls as long as they still
verify against the signing key. Delete the cache directory to rebuild from scratch.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tierwise.errors import MissingDependencyError, VerificationError
from tierwise.package.build import BuildOptions, build_package
from tierwise.package.evaldata import save_eval_data
from tierwise.package.keys import key_id, load_private_key, write_keypair
from tierwise.package.manifest import Manifest
from tierwise.package.measure import DEFAULT_RUNS
from tierwise.package.verify import verify_package
from tierwise.scenarios import get_scenario

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScenarioFiles:
    edge: Path
    cloud: Path
    eval: Path
    test: Path


@dataclass(frozen=True)
class ScenarioPackages:
    """Two verified packages of one scenario and the public key they verify with."""

    edge: Path
    cloud: Path
    public_key: Path
    edge_manifest: Manifest
    cloud_manifest: Manifest
    files: ScenarioFiles  # the operator's models and data the packages were built from


def scenario_files(name: str, out_dir: Path) -> ScenarioFiles:
    """Where `train_scenario` writes a scenario's models and data."""
    return ScenarioFiles(
        edge=out_dir / f"{name}-edge.joblib",
        cloud=out_dir / f"{name}-cloud.joblib",
        eval=out_dir / f"{name}-eval.npz",
        test=out_dir / f"{name}-test.npz",
    )


def train_scenario(
    name: str, out_dir: str | Path, progress: Progress = lambda _: None
) -> ScenarioFiles:
    """Train both models of a scenario and write them (joblib) with its eval and test data."""
    try:
        import joblib
    except ImportError:
        raise MissingDependencyError("training scenario models", "package") from None
    scenario = get_scenario(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress(f"training the {scenario.name} edge and cloud models")
    models = scenario.train()
    files = scenario_files(scenario.name, out)
    joblib.dump(models.edge, files.edge)
    joblib.dump(models.cloud, files.cloud)
    save_eval_data(files.eval, scenario.eval_data())
    save_eval_data(files.test, scenario.test_data())
    return files


def build_scenario_packages(
    name: str,
    cache_dir: str | Path,
    sign_key: str | Path | None = None,
    version: int = 1,
    latency_runs: int = DEFAULT_RUNS,
    progress: Progress = lambda _: None,
) -> ScenarioPackages:
    """Signed edge and cloud packages for a scenario, built once and cached under `cache_dir`.

    Without `sign_key`, a key pair is made once in `cache_dir/keys/` (scenarios.key/.pub).
    Safe to call from several processes at once: one builds, the others wait and reuse.
    """
    scenario = get_scenario(name)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        key_path = Path(sign_key) if sign_key is not None else _default_key(cache / "keys")
        public = _public_key_file(key_path, cache / "keys")
        root = cache / scenario.name
        edge_dir, cloud_dir = root / f"edge-v{version}", root / f"cloud-v{version}"
        cached = _verified(edge_dir, public), _verified(cloud_dir, public)
        if cached[0] is not None and cached[1] is not None:
            files = scenario_files(scenario.name, root / "models")
            return ScenarioPackages(edge_dir, cloud_dir, public, cached[0], cached[1], files)
        files = train_scenario(scenario.name, root / "models", progress)
        data = scenario.eval_data()
        progress(f"packaging the {scenario.name} cloud model")
        cloud = build_package(
            files.cloud,
            data,
            cloud_dir,
            BuildOptions(
                f"{scenario.name}-cloud",
                version,
                key_path,
                None,
                latency_runs=latency_runs,
                force=True,
            ),
            progress,
        )
        progress(f"packaging the {scenario.name} edge model")
        edge = build_package(
            files.edge,
            data,
            edge_dir,
            BuildOptions(
                scenario.name, version, key_path, files.cloud, latency_runs=latency_runs, force=True
            ),
            progress,
        )
        return ScenarioPackages(edge_dir, cloud_dir, public, edge.manifest, cloud.manifest, files)


def _verified(package_dir: Path, public_key: Path) -> Manifest | None:
    if not package_dir.is_dir():
        return None
    try:
        manifest = verify_package(package_dir, [public_key])
    except VerificationError:
        return None
    # built before packages carried a drift reference: rebuild, so feedback has bins
    return manifest if manifest.drift is not None else None


def default_sign_key(cache_dir: str | Path) -> Path:
    """The key `build_scenario_packages` signs with when given none (made on first use)."""
    return _default_key(Path(cache_dir) / "keys")


def _default_key(keys_dir: Path) -> Path:
    private = keys_dir / "scenarios.key"
    if not private.exists():
        write_keypair(keys_dir, "scenarios")
    return private


def _public_key_file(private_path: Path, keys_dir: Path) -> Path:
    """The public half of a private key, as a .pub file named by its key id."""
    public = load_private_key(private_path).public_key()
    path = keys_dir / f"{key_id(public)}.pub"
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        path.write_bytes(pem)
    return path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
