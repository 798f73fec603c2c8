"""The optional traffic section: parsed with units, names checked, errors with their line."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tierwise.errors import SpecError
from tierwise.spec import parse_spec


def _spec(minimal: dict[str, Any], traffic: dict[str, Any]) -> str:
    data = copy.deepcopy(minimal)
    data["traffic"] = traffic
    return yaml.safe_dump(data, sort_keys=False)


def test_traffic_parses_units_and_defaults(minimal: dict[str, Any]) -> None:
    spec = parse_spec(
        _spec(
            minimal,
            {
                "daily": [1, 2],
                "spikes": [{"start": "1h", "duration": "15min", "factor": 4, "features": ["f"]}],
                "outages": [{"start": "30min", "duration": "5min", "sites": ["s1"]}],
                "outbox": {"cap": "10MB", "policy": "drop-newest"},
            },
        )
    )
    assert spec.traffic is not None
    assert spec.traffic.spikes[0].start == 3600.0
    assert spec.traffic.spikes[0].duration == 900.0
    assert spec.traffic.outages[0].link == "edge_cloud"
    assert spec.traffic.outbox.cap == 10e6
    assert spec.traffic.random_outages is True


def test_no_traffic_section_is_fine(minimal: dict[str, Any]) -> None:
    assert parse_spec(yaml.safe_dump(minimal)).traffic is None


@pytest.mark.parametrize(
    ("traffic", "message"),
    [
        (
            {"spikes": [{"start": "1h", "duration": "1min", "factor": 2, "sites": ["nowhere"]}]},
            'traffic.spikes[0].sites[0]: unknown site "nowhere"; known: s1',
        ),
        (
            {"spikes": [{"start": "1h", "duration": "1min", "factor": 2, "features": ["g"]}]},
            'traffic.spikes[0].features[0]: unknown feature "g"; known: f',
        ),
        (
            {"spikes": [{"start": "1h", "duration": "1min", "factor": 0}]},
            "traffic.spikes[0].factor: Input should be greater than 0",
        ),
        (
            {"outages": [{"start": "soon", "duration": "1min"}]},
            'traffic.outages[0].start: expected a duration like 20ms, got "soon"',
        ),
        ({"daily": [0, 0]}, "traffic.daily: daily needs at least one multiplier"),
        ({"outbox": {"policy": "drop-random"}}, "traffic.outbox.policy:"),
    ],
)
def test_bad_traffic_is_refused_with_its_line(
    minimal: dict[str, Any], traffic: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_spec(minimal, traffic), source="s.yaml")
    text = str(info.value)
    assert message in text
    assert text.startswith("s.yaml:")
