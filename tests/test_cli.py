"""The `tierwise` command as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import EXAMPLES
from tests.exported import heavy_modules_loaded


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierwise", *args], capture_output=True, text=True, timeout=300
    )


def test_schema_is_valid_json_schema_of_the_spec() -> None:
    run = _run("schema")
    assert run.returncode == 0, run.stderr
    schema = json.loads(run.stdout)
    assert {"tiers", "sites", "links", "models", "features"} <= set(schema["properties"])
    assert "Feature" in schema["$defs"]


def test_validate_reports_counts() -> None:
    run = _run("validate", str(EXAMPLES[0]))
    assert run.returncode == 0, run.stderr
    assert ": ok — " in run.stdout


def test_plan_writes_json_and_html(tmp_path: Path) -> None:
    spec = next(p for p in EXAMPLES if p.stem == "factory")
    out_json, out_html = tmp_path / "plan.json", tmp_path / "plan.html"
    run = _run("plan", str(spec), "--json", str(out_json), "--html", str(out_html))
    assert run.returncode == 0, run.stderr
    assert "Three strategies side by side" in run.stdout
    data = json.loads(out_json.read_text())
    assert [f["feature"] for f in data["features"]] == [
        "safety-stop",
        "predictive-maintenance",
        "line-optimization",
    ]
    assert out_html.read_text().count("<svg") == 2


def test_plan_json_to_stdout_is_only_json() -> None:
    run = _run("plan", str(EXAMPLES[0]), "--json", "-")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["spec"]


def test_infeasible_spec_exits_4_with_the_reason(tmp_path: Path) -> None:
    text = (EXAMPLES[0].parent / "wearable.yaml").read_text()
    spec = tmp_path / "tight.yaml"
    spec.write_text(text.replace("deadline: 5s", "deadline: 10ms"))
    run = _run("plan", str(spec))
    assert run.returncode == 4
    assert run.stderr.startswith("error: feature afib-warning: no placement meets")
    assert "Traceback" not in run.stderr


def test_unknown_option_is_a_usage_error() -> None:
    run = _run("plan", "--frobnicate")
    assert run.returncode == 2


# What `tierwise --help` must not pay for: the services', the builders' and the solver's stacks.
HEAVY = (
    "fastapi",
    "sqlalchemy",
    "onnxruntime",
    "cryptography",
    "sklearn",
    "torch",
    "flwr",
    "numpy",
    "scipy",
)


def test_starting_the_cli_loads_no_heavy_dependency() -> None:
    """Every verb registers on start, so each keeps its heavy imports inside its commands."""
    assert heavy_modules_loaded("tierwise.cli", HEAVY) == []


@pytest.mark.parametrize(
    ("verb", "option"),
    [
        ("plan", "--json"),
        ("plan", "--html"),
        ("simulate", "--json"),
        ("simulate", "--html"),
        ("simulate", "--plots"),
    ],
)
def test_an_output_that_cannot_be_written_is_one_line_and_exit_2(
    tmp_path: Path, verb: str, option: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "out"  # a folder inside a file: no system lets it be made
    extra = ["--duration", "1min"] if verb == "simulate" else []
    run = _run(verb, str(EXAMPLES[0]), option, str(target), *extra)
    assert run.returncode == 2, run.stderr
    # it names the file, or the folder it would need where a file stands
    assert run.stderr.startswith(f"error: cannot write {blocker}"), run.stderr
    assert len(run.stderr.splitlines()) == 1
    assert "Traceback" not in run.stderr
