"""A model's `scenario:` says which real models play its variants when `tierwise up` runs it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tierwise.errors import SpecError
from tierwise.spec import load_spec, parse_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def _with_model(minimal: dict[str, Any], **model: Any) -> str:
    data = copy.deepcopy(minimal)
    data["models"][0].update(model)
    return yaml.safe_dump(data, sort_keys=False)


def test_short_form_is_a_scenario_name(minimal: dict[str, Any]) -> None:
    spec = parse_spec(_with_model(minimal, scenario="digits"))
    binding = spec.models[0].scenario
    assert binding is not None
    assert binding.name == "digits"
    assert binding.cloud is None
    # no cascade and no `cloud:` list: every variant is played by the edge model
    assert {spec.models[0].scenario_role(v.name) for v in spec.models[0].variants} == {"edge"}


def test_cascade_cloud_variant_is_played_by_the_cloud_model(minimal: dict[str, Any]) -> None:
    cascade = {"edge": "int8", "cloud": "full", "curve": [{"escalated": "0%", "accuracy": "94%"}]}
    spec = parse_spec(_with_model(minimal, scenario="vibration", cascade=cascade))
    model = spec.models[0]
    assert model.scenario is not None
    assert model.scenario_role("full") == "cloud"
    assert model.scenario_role("int8") == "edge"


def test_long_form_names_the_cloud_variants(minimal: dict[str, Any]) -> None:
    spec = parse_spec(_with_model(minimal, scenario={"name": "banks", "cloud": ["int8"]}))
    model = spec.models[0]
    assert model.scenario is not None
    assert model.scenario_role("int8") == "cloud"
    assert model.scenario_role("full") == "edge"


def test_unknown_cloud_variant_names_file_line_and_field(minimal: dict[str, Any]) -> None:
    text = _with_model(minimal, scenario={"name": "digits", "cloud": ["huge"]})
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="spec.yaml")
    (problem,) = info.value.problems
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "- huge" in row)
    assert problem == (
        f'spec.yaml:{line} models[0].scenario.cloud[0]: unknown variant "huge"; known: full, int8'
    )


def test_unknown_field_in_the_binding_is_refused(minimal: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match=r"models\[0\]\.scenario\.edge: unknown field"):
        parse_spec(_with_model(minimal, scenario={"name": "digits", "edge": ["full"]}))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_model_that_a_feature_uses_names_a_scenario(path: Path) -> None:
    spec = load_spec(path)
    used = {f.model for f in spec.features}
    for model in spec.models:
        if model.name in used:
            assert model.scenario is not None, f"{path.name}: {model.name} has no scenario"
