"""Data and models for the examples: real data shipped in packages, or labelled generators.

| scenario      | example  | data                                      | edge model   | cloud   |
|---------------|----------|-------------------------------------------|--------------|---------|
| digits        | camera   | sklearn digits (real)                     | MLP 512x512  | RBF SVM |
| breast-cancer | wearable | sklearn breast_cancer (real)              | depth-3 tree | RBF SVM |
| vibration     | factory  | SYNTHETIC bearing/shaft vibration windows | MLP 8        | RBF SVM |
| transactions  | banks    | SYNTHETIC card transactions               | logistic     | RBF SVM |

`get_scenario` accepts either column of names. `build_scenario_packages` (build.py) trains,
packages and signs a scenario's models, caching the result in a directory.
"""

from __future__ import annotations

from tierwise.errors import UsageError
from tierwise.scenarios.banks import TransactionsScenario
from tierwise.scenarios.base import Scenario, Splits, TrainedModels
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


__all__ = [
    "SCENARIOS",
    "Scenario",
    "Splits",
    "TrainedModels",
    "get_scenario",
    "scenario_names",
]
