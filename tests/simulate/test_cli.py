"""`tierwise simulate` as a user runs it: every example, JSON, plots, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def tierwise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierwise", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_simulates(example: Path) -> None:
    run = tierwise(
        "simulate", str(example), "--strategy", "all", "--duration", "1min", "--json", "-"
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert set(data["strategies"]) == {"plan", "cloud-only", "edge-only"}
    plan = data["strategies"]["plan"]
    assert data["requests"] > 0
    for feature in plan["features"]:
        assert feature["requests"] >= feature["answered"] >= 0
        assert feature["misses"] == feature["late"] + feature["failed"]


def test_report_plots_and_html(tmp_path: Path) -> None:
    example = ROOT / "examples" / "factory.yaml"
    html = tmp_path / "report.html"
    run = tierwise(
        "simulate",
        str(example),
        "--strategy",
        "all",
        "--duration",
        "30s",
        "--plots",
        str(tmp_path),
        "--html",
        str(html),
        "--json",
        str(tmp_path / "out.json"),
    )
    assert run.returncode == 0, run.stderr
    assert "safety-stop" in run.stdout
    assert "outbox peak" in run.stdout
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["factory-cost.png", "factory-latency-cdf.png", "factory-outage.png"]
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = html.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page
    assert "cloud-only" in page
    assert json.loads((tmp_path / "out.json").read_text())["spec"] == "factory"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "everywhere"], "unknown strategy 'everywhere'"),
        (["--duration", "soon"], "--duration: expected a duration"),
        (["--duration", "0s"], "--duration must be positive"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: list[str], message: str) -> None:
    run = tierwise("simulate", str(ROOT / "examples" / "factory.yaml"), *args)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_spec_exits_2(tmp_path: Path) -> None:
    run = tierwise("simulate", str(tmp_path / "nope.yaml"))
    assert run.returncode == 2
    assert "cannot read the spec" in run.stderr
