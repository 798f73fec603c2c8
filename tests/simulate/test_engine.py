"""The simulator on small specs whose answers are known: outages, the outbox, spikes, cascades."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml
from tests.small_specs import MINIMAL, cascade_model, varied

from tierwise.simulate.run import simulate
from tierwise.spec import Spec, parse_spec

# MINIMAL with a two-variant cascade, an accuracy floor, one scheduled 5-minute WAN outage
# and an outbox cap: the tests below know what the simulator must answer for it.
BASE = varied(
    MINIMAL,
    name="small",
    tiers__edge__workers=2,
    tiers__cloud={"compute": "500GFLOP/s", "memory": "32GB", "price_per_hour": "$1/h"},
    sites__0__devices=20,
    links__device_edge__rtt_p99="4ms",
    links__edge_cloud__rtt_p99="150ms",
    models=[
        cascade_model(
            "m",
            {"name": "small", "flops": "0.2GFLOP", "size": "100MB", "accuracy": "90%"},
            {"name": "large", "flops": "20GFLOP", "size": "8GB", "accuracy": "97%"},
            {"0%": "90%", "20%": "96%"},
        )
    ],
    features__0__upstream={"rate": "1/s", "size": "1KB"},
    features__0__deadline="1s",
    features__0__min_accuracy="95%",
    traffic={
        "random_outages": False,
        "outages": [{"start": "10min", "duration": "5min"}],
        "outbox": {"cap": "100MB"},
    },
)


def spec_with(**changes: Any) -> Spec:
    return parse_spec(yaml.safe_dump(varied(BASE, **changes)))


def test_outage_fails_cloud_requests_and_the_outbox_holds_telemetry() -> None:
    spec = spec_with()
    result, _ = simulate(spec, ["cloud-only", "edge-only"], duration=1800.0, seed=3)
    cloud = result.runs["cloud-only"].features[0]
    assert cloud.placement == "cloud"
    assert cloud.failed / cloud.requests == pytest.approx(300 / 1800, rel=0.05)
    assert cloud.escalation_rate == pytest.approx(1 - 300 / 1800, rel=0.05)
    edge = result.runs["edge-only"]
    assert edge.features[0].availability == 1.0
    site = edge.sites[0]
    assert site.wan_down_seconds == pytest.approx(300.0)
    telemetry = 20 * 1000.0  # bytes/s from 20 devices
    assert site.outbox_peak_bytes == pytest.approx(telemetry * 300, rel=0.02)
    assert site.outbox_dropped_bytes == 0.0
    assert site.outbox_sent_bytes == pytest.approx(telemetry * 1800, rel=0.01)
    assert site.outbox_max_delay == pytest.approx(300.0, rel=0.05)


@pytest.mark.parametrize(("policy", "delay"), [("drop-oldest", 50.0), ("drop-newest", 300.0)])
def test_a_full_outbox_drops_and_counts_by_its_policy(policy: str, delay: float) -> None:
    spec = spec_with(traffic__outbox={"cap": "1MB", "policy": policy})
    result, _ = simulate(spec, ["edge-only"], duration=1800.0, seed=3)
    site = result.runs["edge-only"].sites[0]
    assert site.outbox_peak_bytes == pytest.approx(1e6)
    assert site.outbox_dropped_bytes == pytest.approx(20e3 * 300 - 1e6, rel=0.02)
    assert site.outbox_sent_bytes + site.outbox_dropped_bytes == pytest.approx(
        20e3 * 1800, rel=0.01
    )
    # drop-oldest keeps the freshest 1 MB (50 s of telemetry); drop-newest the first 1 MB
    assert site.outbox_max_delay == pytest.approx(delay, rel=0.06)


def test_cascade_escalates_its_share_and_answers_locally_while_the_wan_is_down() -> None:
    spec = spec_with(features__0__offline=True)  # no plain cloud: the cascade is the cheapest
    result, planned = simulate(spec, ["plan"], duration=1800.0, seed=4)
    f = result.runs["plan"].features[0]
    assert f.placement == "cascade"
    assert f.availability == 1.0  # the LAN never failed: every request got an answer
    assert f.escalation_rate == pytest.approx(0.2 * (1 - 300 / 1800), rel=0.06)
    assert f.escalated_in_time == f.escalated  # 1 s budget, 40 ms round trips
    assert f.misses == 0
    assert planned.plan.features[0].escalation_rate == 0.2


def test_spike_saturates_cloud_only_uplink_but_not_the_edge() -> None:
    spec = spec_with(
        links__edge_cloud__bandwidth="5Mbps",
        traffic={
            "random_outages": False,
            "spikes": [{"start": "20min", "duration": "5min", "factor": 3}],
        },
    )
    result, _ = simulate(spec, ["cloud-only", "edge-only"], duration=3600.0, seed=5)
    cloud, edge = result.runs["cloud-only"], result.runs["edge-only"]
    assert cloud.series is not None
    assert edge.series is not None
    t = (cloud.series.edges[:-1] + cloud.series.edges[1:]) / 2
    spike = (t > 21 * 60) & (t < 25 * 60)
    calm = t > 40 * 60
    assert np.nanmin(cloud.series.p99[0][spike]) > 1.0  # over budget, all through the spike
    assert np.nanmax(cloud.series.p99[0][calm]) < 1.0  # and back once the queue drained
    assert cloud.features[0].misses > 0
    # three times the requests, but only what the 5 Mbps uplink carries reaches the cloud
    assert cloud.series.cost[spike].mean() > 1.4 * cloud.series.cost[calm].mean()
    assert np.nanmax(edge.series.p99[0]) < 1.0
    assert edge.features[0].misses == 0


def test_same_seed_same_run() -> None:
    spec = spec_with(traffic__random_outages=True)
    first, _ = simulate(spec, ["plan"], duration=600.0, seed=9)
    again, _ = simulate(spec, ["plan"], duration=600.0, seed=9)
    one, two = first.to_dict(), again.to_dict()
    one.pop("wall_seconds")
    two.pop("wall_seconds")
    assert one == two


def test_daily_pattern_keeps_the_mean_rate() -> None:
    spec = spec_with(traffic={"daily": [1, 3], "random_outages": False})
    result, _ = simulate(spec, ["edge-only"], duration=86400.0, seed=2)
    f = result.runs["edge-only"].features[0]
    assert f.requests == pytest.approx(20 * 5 * 86400, rel=0.01)
    requests = result.runs["edge-only"].series.requests[0]  # type: ignore[union-attr]
    half = len(requests) // 2
    assert requests[half:].sum() == pytest.approx(3 * requests[:half].sum(), rel=0.02)
