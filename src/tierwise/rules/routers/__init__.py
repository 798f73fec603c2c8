"""Escalation rules: how sure a cascade's edge model is that its answer is right, per input row.

A rule turns the edge model's class probabilities [N, classes], and the input rows [N,
features] they came from, into one *score* per row in [0, 1]; the cascade escalates the rows
scoring below its threshold (`escalation.is_hard`). Only `prototypes` reads the inputs.
The rules differ only in that score, so one calibration curve per rule (package/calibrate.py)
tells how much each must escalate to reach an accuracy, and the agent, the simulator and the
package build all run the very same code:

- `max_probability`: the top class probability (the classic rule, and the default);
- `margin`: top probability minus the runner-up's;
- `entropy`: one minus the normalized entropy of the probabilities;
- `temperature`: the top probability after temperature scaling fitted on held-out data (a
  calibrated chance of being right; it orders rows almost as max-probability does);
- `learned`: a small logistic regression, trained on held-out edge outputs to predict "the
  edge answer is right", run by ONNX Runtime (the package ships it as a signed file);
- `prototypes`: the top probability times how much the input's neighbourhood (per-class
  k-means prototypes of the labelled training inputs) agrees with the top class, run by ONNX
  Runtime from a signed file too.

Pure numpy (the learned and prototype rules' sessions come from whoever loads the package), so
`tierwise[edge]` can run every rule on a gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Protocol as _Protocol

from tierwise.rules.routers.entropy import Entropy
from tierwise.rules.routers.learned import Learned, router_features
from tierwise.rules.routers.margin import Margin
from tierwise.rules.routers.max_probability import MaxProbability
from tierwise.rules.routers.prototypes import Prototypes, PrototypeSet, prototype_scores
from tierwise.rules.routers.temperature import Temperature, fit_temperature
from tierwise.spec.tiers import EscalationRule as _RuleName

if TYPE_CHECKING:  # annotations only: the package's names are its rules (__all__)
    from collections.abc import Callable

    import numpy as np
    from numpy.typing import NDArray

    from tierwise.rules._types import FloatArray, Inputs, Probabilities
    from tierwise.rules.routers.prototypes import ScoreModel

DEFAULT_RULE = _RuleName.MAX_PROBABILITY.value
RULE_NAMES = tuple(rule.value for rule in _RuleName)


class EscalationRule(_Protocol):
    """Scores rows by how sure the edge answer is: below the cascade's threshold escalates."""

    name: str

    def score(self, probabilities: Probabilities, inputs: Inputs | None) -> FloatArray:
        """[N, classes] class probabilities, and the [N, features] input rows they came from
        -> [N] scores in [0, 1], higher = surer. Rules reading only the probabilities ignore
        `inputs`; None (a caller without the rows) is refused by a rule that needs them."""
        ...


def make_rule(
    name: str,
    temperature: float | None = None,
    learned: Callable[[NDArray[np.float32]], FloatArray] | None = None,
    prototypes: ScoreModel | None = None,
) -> EscalationRule:
    """The rule called `name`, with its fitted parameter (temperature) or model (learned,
    prototypes)."""
    if name == "max_probability":
        return MaxProbability()
    if name == "margin":
        return Margin()
    if name == "entropy":
        return Entropy()
    if name == "temperature":
        if temperature is None:
            raise ValueError("the temperature rule needs its fitted temperature")
        return Temperature(temperature)
    if name == "learned":
        if learned is None:
            raise ValueError("the learned rule needs its model")
        return Learned(learned)
    if name == "prototypes":
        if prototypes is None:
            raise ValueError("the prototypes rule needs its model")
        return Prototypes(prototypes)
    raise ValueError(f'unknown escalation rule "{name}"; known: {", ".join(RULE_NAMES)}')


__all__ = [
    "DEFAULT_RULE",
    "RULE_NAMES",
    "Entropy",
    "EscalationRule",
    "Learned",
    "Margin",
    "MaxProbability",
    "PrototypeSet",
    "Prototypes",
    "Temperature",
    "fit_temperature",
    "make_rule",
    "prototype_scores",
    "router_features",
]
