"""The scenarios by name: which class serves each, and one instance each (its split is cached)."""

from __future__ import annotations

from tierwise.errors import UsageError
from tierwise.scenarios.banks import TransactionsScenario
from tierwise.scenarios.base import Scenario
from tierwise.scenarios.camera import DigitsScenario
from tierwise.scenarios.factory import VibrationScenario
from tierwise.scenarios.wearable import BreastCancerScenario

SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls
    for cls in (DigitsScenario, BreastCancerScenario, VibrationScenario, TransactionsScenario)
}
_instances: dict[str, Scenario] = {}


def scenario_names() -> list[str]:
    return sorted(SCENARIOS)


def get_scenario(name: str) -> Scenario:
    """A scenario by its name (digits) or its example's name (camera); one instance each."""
    cls = SCENARIOS.get(name) or next((c for c in SCENARIOS.values() if c.example == name), None)
    if cls is None:
        known = ", ".join(f"{n} ({c.example})" for n, c in sorted(SCENARIOS.items()))
        raise UsageError(f'unknown scenario "{name}"; known: {known}')
    if cls.name not in _instances:  # the split is cached on the instance
        _instances[cls.name] = cls()
    return _instances[cls.name]
