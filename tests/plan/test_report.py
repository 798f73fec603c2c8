"""The plan report in the terminal: placements, reasons, and what the solver could not prove."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rich.console import Console

from tierwise.plan.planner import PlanResult, plan
from tierwise.plan.report import render
from tierwise.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def factory() -> PlanResult:
    return plan(load_spec(EXAMPLES / "factory.yaml"))


def _text(result: PlanResult) -> str:
    console = Console(record=True, width=160)
    render(result, console)
    return console.export_text()


def test_a_proven_plan_says_nothing_about_the_solver(factory: PlanResult) -> None:
    assert factory.optimality_gap == 0.0
    text = _text(factory)
    assert "safety-stop" in text
    assert "limit" not in text


def test_a_plan_the_time_limit_cut_short_says_how_far_from_the_cheapest_it_may_be(
    factory: PlanResult,
) -> None:
    stopped = dataclasses.replace(factory, optimality_gap=0.0123)
    text = " ".join(_text(stopped).split())
    assert "stopped at its 60 s limit" in text
    assert "at most 1.23% more than the cheapest" in text
    assert stopped.to_dict()["optimality_gap"] == 0.0123
