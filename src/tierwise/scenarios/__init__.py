"""Data and models for the examples: real data shipped in packages, or labelled generators.

| scenario      | example  | data                                      | edge model   | cloud   |
|---------------|----------|-------------------------------------------|--------------|---------|
| digits        | camera   | sklearn digits (real)                     | MLP 512x512  | RBF SVM |
| breast-cancer | wearable | sklearn breast_cancer (real)              | depth-3 tree | RBF SVM |
| vibration     | factory  | SYNTHETIC bearing/shaft vibration windows | MLP 8        | RBF SVM |
| transactions  | banks    | SYNTHETIC card transactions               | logistic     | RBF SVM |

`get_scenario` (registry.py) accepts either column of names. `build_scenario_packages`
(build.py) trains, packages and signs a scenario's models, caching the result in a directory.
`commands.py` holds `tierwise scenario list|train`.

The names below load on first use, so the CLI, which imports `commands` on every start, does
not pay for numpy and the generators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierwise.lazy import lazy_names

if TYPE_CHECKING:
    from tierwise.scenarios.base import Scenario, Splits, TrainedModels
    from tierwise.scenarios.registry import SCENARIOS, get_scenario, scenario_names

__all__ = [
    "SCENARIOS",
    "Scenario",
    "Splits",
    "TrainedModels",
    "get_scenario",
    "scenario_names",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "SCENARIOS": "registry",
        "get_scenario": "registry",
        "scenario_names": "registry",
        "Scenario": "base",
        "Splits": "base",
        "TrainedModels": "base",
    },
)
