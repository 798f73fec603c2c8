"""Every example in examples/ plans, and keeps the promises its comments make."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import EXAMPLES

from tierwise.plan.planner import plan
from tierwise.spec import load_spec


def test_the_four_scenarios_are_there() -> None:
    assert {p.stem for p in EXAMPLES} >= {"factory", "camera", "wearable", "banks"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_plans_and_meets_every_deadline(path: Path) -> None:
    result = plan(load_spec(path))
    assert result.plan.privacy_violations == 0
    for outcome in result.plan.features:
        assert outcome.meets_deadline, outcome
    cloud = result.strategies["cloud-only"]
    if result.plan.cost > cloud.cost:  # cheaper only by breaking a hard constraint
        assert cloud.privacy_violations or not all(o.meets_deadline for o in cloud.features)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_numbers_cite_their_source(path: Path) -> None:
    # Numbers come from public figures, cited in a comment next to them.
    comments = [line for line in path.read_text().splitlines() if "#" in line]
    assert len(comments) >= 10


def test_camera_streams_would_not_fit_the_uplink() -> None:
    result = plan(load_spec(Path(EXAMPLES[0]).parent / "camera.yaml"))
    near_miss = next(d for d in result.decisions if d.outcome.feature == "near-miss")
    assert near_miss.outcome.placement in {"edge", "device"}
    assert "WAN at warehouse-" in near_miss.reason


def test_wearable_heart_data_stays_on_the_device() -> None:
    result = plan(load_spec(Path(EXAMPLES[0]).parent / "wearable.yaml"))
    afib = next(d for d in result.decisions if d.outcome.feature == "afib-warning")
    assert afib.outcome.placement == "device"
    assert "raw data may not leave the device" in afib.reason
    assert result.training[0].mode == "federated"


def test_banks_score_inside_the_bank_and_train_federated() -> None:
    result = plan(load_spec(Path(EXAMPLES[0]).parent / "banks.yaml"))
    score = next(d for d in result.decisions if d.outcome.feature == "card-fraud-score")
    assert score.outcome.placement in {"edge", "device"}
    assert "raw data may not leave the site" in score.reason
    assert result.training[0].mode == "federated"
