"""Shared test helpers: paths, and the minimal valid spec (tests/small_specs.py) as a fixture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.small_specs import MINIMAL, varied

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.fixture
def minimal() -> dict[str, Any]:
    """A fresh deep copy of a small valid spec, as the dict YAML would load into."""
    return varied(MINIMAL)
