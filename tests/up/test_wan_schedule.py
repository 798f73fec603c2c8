"""`--wan`: terms applied over the spec link; the WAN a run injects, written back into the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise.errors import UsageError
from tierwise.spec import load_spec
from tierwise.up.wan_schedule import parse_wan, run_spec

FACTORY = Path(__file__).resolve().parents[2] / "examples" / "factory.yaml"


def test_default_is_the_spec_link() -> None:
    spec = load_spec(FACTORY)
    cond = parse_wan(None).conditions(spec.links.edge_cloud)
    assert (cond.rtt_p50_s, cond.rtt_p99_s, cond.loss) == pytest.approx((0.04, 0.25, 0.001))
    assert cond.outages == ()


def test_terms_override_the_spec_and_outages_are_sorted() -> None:
    spec = load_spec(FACTORY)
    schedule = parse_wan("spec, rtt=60ms/250ms, loss=5%, outage=10s@30s, outage=5s@2s")
    cond = schedule.conditions(spec.links.edge_cloud)
    assert (cond.rtt_p50_s, cond.rtt_p99_s, cond.loss) == pytest.approx((0.06, 0.25, 0.05))
    assert [o.start_s for o in schedule.outages] == [2.0, 30.0]
    assert schedule.down_at(3.0)
    assert not schedule.down_at(8.0)
    assert schedule.down_at(39.9)
    assert schedule.downtime(35.0) == pytest.approx(10.0)  # 5 s + the first 5 s of the second


def test_none_is_a_perfect_wire() -> None:
    spec = load_spec(FACTORY)
    cond = parse_wan("none").conditions(spec.links.edge_cloud)
    assert (cond.rtt_p50_s, cond.rtt_p99_s, cond.loss) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("rtt=fast", "expected a duration"),
        ("loss=150%", "loss must be in"),
        ("outage=20s", "duration@start"),
        ("rtt=200ms/20ms", "p99 must be at least"),
        ("storm", "expected spec, none"),
    ],
)
def test_bad_terms_name_the_term(text: str, complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint) as info:
        parse_wan(text)
    assert repr(text) in str(info.value)


def test_run_spec_puts_the_runs_wan_into_every_link() -> None:
    spec = load_spec(FACTORY)
    run = run_spec(spec, parse_wan("rtt=60ms/250ms,loss=5%,outage=20s@20s"), duration=60.0)
    link = run.links.edge_cloud
    assert (link.rtt_p50, link.rtt_p99, link.loss) == pytest.approx((0.06, 0.25, 0.05))
    assert link.availability == pytest.approx(2 / 3)
    assert link.mean_outage == pytest.approx(20.0)
    assert run.links.device_edge == spec.links.device_edge
    calm = run_spec(spec, parse_wan("spec"), duration=60.0).links.edge_cloud
    assert (calm.availability, calm.mean_outage) == (1.0, 0.0)  # the run injects no outage
