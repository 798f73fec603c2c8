"""Which real models stand in for a spec model when `tierwise up` runs it: a scenario binding.

A spec describes models by their figures (FLOPs, size, accuracy); `tierwise up` needs
something that actually runs. A model names a scenario (`tierwise scenario list`: digits,
breast-cancer, vibration, transactions — or the example it stands for: camera, wearable,
factory, banks), and each of its variants is played by one of that scenario's two models:

- the scenario's small **edge** model (its signed package `<scenario>`), or
- its larger **cloud** model (the package `<scenario>-cloud`).

```yaml
models:
  - name: bearing-health
    scenario: vibration                        # short form
    ...
  - name: line-optimizer
    scenario: {name: vibration, cloud: [full]} # these variants are played by the cloud model
```

Without `cloud:`, the cascade's cloud variant (if the model has a cascade) is played by the
cloud model and every other variant by the edge model. So a plan that puts `bearing-health`
in a cascade small→large runs the scenario's edge model at the gateway and escalates to its
cloud model; a plan that puts a `cloud:` variant at the edge ships the cloud model there.

This module depends on pydantic only (the spec depends on nothing of ours); `Model.scenario_role`
applies the rule above, `refs.py` checks the variant names under `cloud:`, and whether the
scenario name exists is checked by `tierwise up`, which knows the scenarios.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["edge", "cloud"]


class ScenarioBinding(BaseModel):
    """The scenario whose models play a spec model's variants (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="scenario (digits, vibration...) or its example")
    cloud: list[str] | None = Field(
        None,
        description="variants played by the scenario's cloud model "
        "(default: the cascade's cloud variant)",
    )

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value
