"""A bad spec gives one line naming file, line and field, and exit code 2 — never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tierwise.errors import SpecError
from tierwise.spec import load_spec, parse_spec

FACTORY = Path(__file__).resolve().parents[2] / "examples" / "factory.yaml"


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="spec.yaml")
    return info.value.problems


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def _line_of(text: str, needle: str, exact: bool = False) -> int:
    lines = enumerate(text.splitlines(), 1)
    return next(i for i, line in lines if (line.strip() == needle if exact else needle in line))


def test_minimal_spec_loads_with_base_units(minimal: dict[str, Any]) -> None:
    spec = parse_spec(_dump(minimal))
    assert spec.features[0].deadline == pytest.approx(0.05)
    assert spec.links.edge_cloud.egress == pytest.approx(0.09e-9)


def test_wrong_unit_names_file_line_and_field(minimal: dict[str, Any]) -> None:
    minimal["features"][0]["deadline"] = "fast"
    text = _dump(minimal)
    [problem] = _problems(text)
    line = _line_of(text, "deadline: fast")
    assert problem == (
        f'spec.yaml:{line} features[0].deadline: expected a duration like 20ms, got "fast"'
    )


def test_unknown_field_is_refused_at_its_line(minimal: dict[str, Any]) -> None:
    minimal["links"]["edge_cloud"]["jitter"] = "5ms"
    text = _dump(minimal)
    [problem] = _problems(text)
    assert problem == f"spec.yaml:{_line_of(text, 'jitter')} links.edge_cloud.jitter: unknown field"


def test_reference_to_a_missing_model_lists_the_known_ones(minimal: dict[str, Any]) -> None:
    minimal["features"][0]["model"] = "resnet"
    text = _dump(minimal)
    [problem] = _problems(text)
    line = _line_of(text, "model: resnet")
    assert problem == f'spec.yaml:{line} features[0].model: unknown model "resnet"; known: m'


def test_negative_rate_is_refused(minimal: dict[str, Any]) -> None:
    minimal["features"][0]["rate"] = "-5/s"
    text = _dump(minimal)
    [problem] = _problems(text)
    assert problem.startswith(f"spec.yaml:{_line_of(text, 'rate:')} features[0].rate: ")
    assert "-5/s" in problem


def test_zero_rate_is_refused_as_not_positive(minimal: dict[str, Any]) -> None:
    minimal["features"][0]["rate"] = 0
    [problem] = _problems(_dump(minimal))
    assert problem.endswith("features[0].rate: rate must be positive, like 20/s")


def test_yaml_syntax_error_names_its_line() -> None:
    text = "name: x\ntiers:\n  device: {compute: 1GFLOP/s\nsites: []\n"
    [problem] = _problems(text)
    assert problem.startswith("spec.yaml:")
    assert "(root): YAML syntax error" in problem


def test_empty_file_is_refused() -> None:
    [problem] = _problems("")
    assert problem.startswith("spec.yaml:1 (root): the spec is empty")


def test_a_list_at_the_root_is_refused() -> None:
    [problem] = _problems("- a\n- b\n")
    assert problem == (
        "spec.yaml:1 (root): expected a mapping with tiers, sites, links, models and features, "
        "got a list"
    )


def test_missing_required_field_points_at_its_parent(minimal: dict[str, Any]) -> None:
    del minimal["features"][0]["deadline"]
    text = _dump(minimal)
    [problem] = _problems(text)
    assert problem == (
        f"spec.yaml:{_line_of(text, '- name: f', exact=True)} features[0].deadline: "
        "required field is missing"
    )


def test_duplicate_keys_are_refused() -> None:
    text = FACTORY.read_text().replace("name: factory\n", "name: factory\nname: again\n", 1)
    [problem] = _problems(text)
    assert problem == "spec.yaml:6 name: duplicate key"


def test_duplicate_feature_names_are_refused(minimal: dict[str, Any]) -> None:
    minimal["features"].append(dict(minimal["features"][0]))
    text = _dump(minimal)
    [problem] = _problems(text)
    assert problem.endswith('features[1].name: duplicate name "f"')


def test_link_with_p99_below_p50_is_refused(minimal: dict[str, Any]) -> None:
    minimal["links"]["edge_cloud"]["rtt_p99"] = "10ms"
    [problem] = _problems(_dump(minimal))
    assert "links.edge_cloud: rtt_p99 must be at least rtt_p50" in problem


def test_several_problems_give_one_line_each(minimal: dict[str, Any]) -> None:
    minimal["features"][0]["deadline"] = "fast"
    minimal["features"][0]["payload"] = "big"
    assert len(_problems(_dump(minimal))) == 2


def test_unreadable_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("unknown-field", lambda t: t.replace("  rate: 5/s", "  rate: 5/s\n  colour: red")),
        ("wrong-unit", lambda t: t.replace("deadline: 50ms", "deadline: fast")),
        ("missing-model", lambda t: t.replace("model: m\n", "model: nope\n")),
        ("negative-rate", lambda t: t.replace("rate: 5/s", "rate: -5/s")),
        ("yaml-syntax", lambda t: t.replace("sites:", "sites: [")),
        ("empty", lambda t: ""),
    ],
)
def test_cli_prints_one_line_and_exits_2(
    tmp_path: Path, minimal: dict[str, Any], name: str, mutate: Any
) -> None:
    text = mutate(yaml.safe_dump(minimal, sort_keys=False, default_flow_style=False))
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    run = subprocess.run(
        [sys.executable, "-m", "tierwise", "plan", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"error: {spec}:"), lines[0]
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
