"""The supervisor's pace while devices stream: a look per view interval, on time for outages."""

from __future__ import annotations

import pytest

from tierwise.up.stream import VIEW_INTERVAL_S, _pause
from tierwise.up.wan_schedule import parse_wan


def test_after_warm_up_the_supervisor_looks_once_per_view_interval() -> None:
    # Each look asks every agent for its state: looking 20 times a second slowed the agents.
    assert _pause(parse_wan("spec"), 5.0) == VIEW_INTERVAL_S


def test_warm_up_ends_on_time() -> None:
    assert _pause(parse_wan("spec"), -0.3) == pytest.approx(0.3)


def test_an_outage_edge_cuts_the_pause_short() -> None:
    schedule = parse_wan("spec,outage=20s@10s")
    assert _pause(schedule, 9.75) == pytest.approx(0.25)
    assert _pause(schedule, 29.9) == pytest.approx(0.1)
