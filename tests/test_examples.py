"""Every example in examples/ plans, and keeps the promises its comments make."""

from __future__ import annotations

import re
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


# Every number says where it comes from: a figure about the world (hardware, networks, prices,
# models) names its source; a choice of the scenario's own (sites, features, training) is
# stated as an assumption.
NUMBER = re.compile(r"(?<![\w.-])\d")  # a figure ("64MB", "{device: 45ms}"), not "int8"
KEY = re.compile(r"^\s*(- )?[\w-]+:")


def citations(text: str) -> tuple[int, list[tuple[int, str]]]:
    """(numbers found below the top level, those with no comment beside them as (line, text)).

    A comment cites the numbers on its own line, or, on a line of its own, every number
    after it in the block it opens (the lines indented at least as deep), as the examples
    write "# Industrial edge PC (...)" above an edge tier's compute, memory and workers.
    """
    numbers, uncited = 0, []
    comments: list[int] = []  # indents of the comment lines still open
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(indent)
            continue
        comments = [c for c in comments if c <= indent]  # a shallower line ends deeper blocks
        if indent == 0:  # a new section: no comment reaches into it
            comments = []
            continue
        code, hash_, _ = line.partition("#")
        if NUMBER.search(KEY.sub("", code)):
            numbers += 1
            if not hash_ and not comments:
                uncited.append((number, stripped))
    return numbers, uncited


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_numbers_cite_their_source(path: Path) -> None:
    numbers, uncited = citations(path.read_text())
    assert numbers >= 40  # tiers, sites, links, models, features, training: all checked
    assert uncited == [], f"{path.name}: numbers without a source beside them: {uncited}"


RULES = """\
# A header comment cites nothing below it.
name: rules
tiers:
  device:
    compute: 1GFLOP/s           # cited on its line
    # Cited by the comment opening its block, and so is the number after it.
    memory: 64MB
    workers: 2
  edge:
    memory: 4GB
models:
  - name: m
    variants:
      - name: int8
        # A comment in one variant does not reach the next.
        flops: 3MFLOP
      - name: full
        flops: 10MFLOP
features:
  - name: f
    rate: 5/s
"""


def test_citations_follow_the_examples_rule() -> None:
    assert citations(RULES) == (
        7,
        [(10, "memory: 4GB"), (18, "flops: 10MFLOP"), (21, "rate: 5/s")],
    )


def test_a_number_that_loses_its_source_is_reported() -> None:
    factory = next(p for p in EXAMPLES if p.stem == "factory").read_text()
    cloud_source = ("# AWS c7i.4xlarge:", "# (aws.amazon.com/ec2/pricing/on-demand)")
    lines = factory.splitlines(keepends=True)
    without = [line for line in lines if not line.strip().startswith(cloud_source)]
    assert len(without) == len(lines) - 2
    _, uncited = citations("".join(without))
    assert [text for _, text in uncited] == [
        "compute: 600GFLOP/s",
        "memory: 32GB",
        "price_per_hour: $0.714/h",
    ]


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
