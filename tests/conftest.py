"""Shared test helpers: paths, the minimal valid spec (tests/small_specs.py) as a fixture, and
the digits scenario's packages, built once per session for the tests that need real ones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.small_specs import MINIMAL, varied

if TYPE_CHECKING:
    from tierwise.scenarios.build import ScenarioPackages

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.fixture
def minimal() -> dict[str, Any]:
    """A fresh deep copy of a small valid spec, as the dict YAML would load into."""
    return varied(MINIMAL)


@pytest.fixture(scope="session")
def scenario_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One package cache for the session: a scenario's packages are built once (training, its
    out-of-fold router data, every rule's curve) for the fixtures below and `tierwise up`."""
    return tmp_path_factory.mktemp("scenario-packages")


def _scenario_packages(name: str, cache: Path) -> ScenarioPackages:
    from threadpoolctl import threadpool_limits

    from tierwise.scenarios.build import build_scenario_packages

    # One BLAS thread: the routers' cross-validation runs ~5x slower with BLAS threads
    # fighting over a busy 2-core machine (training already limits itself the same way).
    with threadpool_limits(1):
        return build_scenario_packages(name, cache, latency_runs=5)


@pytest.fixture(scope="session")
def digits_packages(scenario_cache: Path) -> ScenarioPackages:
    """The digits scenario's signed edge package (fp32 + INT8, every escalation rule's curve,
    learned routers fitted on out-of-fold outputs) and cloud package: ~30 s, built once."""
    return _scenario_packages("digits", scenario_cache)


@pytest.fixture(scope="session")
def transactions_packages(scenario_cache: Path) -> ScenarioPackages:
    """The transactions scenario's packages (a labelled generator: 6,000 rows, so its eval
    and test splits hold 1,200 each), built once."""
    return _scenario_packages("transactions", scenario_cache)


@pytest.fixture(scope="session")
def vibration_packages(scenario_cache: Path) -> ScenarioPackages:
    """The vibration (factory) scenario's packages, built in this process: its generated rows
    are already here when tests/scenarios ran, and `tierwise up` would time 300 calls a batch."""
    return _scenario_packages("vibration", scenario_cache)
