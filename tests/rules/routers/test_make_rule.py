"""make_rule: a rule by the name the spec, the manifest and the wire use."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.rules.routers import (
    DEFAULT_RULE,
    RULE_NAMES,
    Entropy,
    Learned,
    Margin,
    MaxProbability,
    Prototypes,
    Temperature,
    make_rule,
)
from tierwise.spec.tiers import EscalationRule


def test_every_name_the_spec_knows_makes_its_rule() -> None:
    assert tuple(rule.value for rule in EscalationRule) == RULE_NAMES
    assert DEFAULT_RULE == "max_probability"
    made = {
        name: make_rule(
            name, temperature=2.0, learned=lambda f: f[:, 0], prototypes=lambda p, x: p[:, 0]
        )
        for name in RULE_NAMES
    }
    kinds = {name: type(rule) for name, rule in made.items()}
    assert kinds == {
        "max_probability": MaxProbability,
        "margin": Margin,
        "entropy": Entropy,
        "temperature": Temperature,
        "learned": Learned,
        "prototypes": Prototypes,
    }
    assert all(rule.name == name for name, rule in made.items())


def test_the_parameters_reach_the_rule() -> None:
    rule = make_rule("temperature", temperature=2.5)
    assert isinstance(rule, Temperature)
    assert rule.temperature == 2.5
    rows = np.array([[0.8, 0.2], [0.55, 0.45]])
    learned = make_rule("learned", learned=lambda f: np.full(len(f), 0.25))
    np.testing.assert_allclose(learned.score(rows, None), [0.25, 0.25])
    prototypes = make_rule("prototypes", prototypes=lambda p, x: x[:, 0] * p[:, 1])
    np.testing.assert_allclose(prototypes.score(rows, np.array([[1.0], [0.5]])), [0.2, 0.225])


def test_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match='unknown escalation rule "confidence"; known: max_prob'):
        make_rule("confidence")
    with pytest.raises(ValueError, match="learned"):
        make_rule("Max_Probability")  # names are exact


def test_a_rule_without_its_fitted_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="needs its fitted temperature"):
        make_rule("temperature")
    with pytest.raises(ValueError, match="needs its model"):
        make_rule("learned", temperature=1.0)
    with pytest.raises(ValueError, match="needs its model"):
        make_rule("prototypes", learned=lambda f: f[:, 0])
