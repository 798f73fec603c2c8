"""Cost rules: the spec's pricing, for a call, an hour, a month."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.plan.candidates import cloud_cost
from tierwise.rules.cost import SECONDS_PER_MONTH, CloudPricing, egress_cost, prorated
from tierwise.spec import parse_spec
from tierwise.spec.units import SECONDS_PER_MONTH as SPEC_MONTH


def test_per_call_and_per_hour() -> None:
    calls = CloudPricing(price_per_call=0.0002, price_per_hour=None)
    assert calls.usage(1000, 5.0) == pytest.approx(0.2)
    hourly = CloudPricing(price_per_call=None, price_per_hour=0.7, max_utilization=0.7)
    assert hourly.usage(0, 3600 * 0.7) == pytest.approx(0.7)  # busy 0.7 h = one paid hour
    kept = CloudPricing(price_per_call=None, price_per_hour=1.0, min_instances=2)
    assert kept.compute(0, 0.0, 3600.0) == pytest.approx(2.0)


def test_arrays_and_floats_agree() -> None:
    pricing = CloudPricing(price_per_call=None, price_per_hour=0.5, max_utilization=0.5)
    busy = np.array([0.0, 10.0, 3600.0])
    assert pricing.usage(0, busy).tolist() == [pricing.usage(0, float(b)) for b in busy]
    assert egress_cost(np.array([1e9, 2e9]), 0.09e-9).tolist() == pytest.approx([0.09, 0.18])
    assert prorated(100.0, SECONDS_PER_MONTH / 2) == pytest.approx(50.0)


def test_the_planners_monthly_cloud_cost_is_this_rule_over_a_month(minimal: dict) -> None:
    for tier in (
        {"compute": "500GFLOP/s", "memory": "32GB", "price_per_call": "$0.20/1k"},
        {"compute": "500GFLOP/s", "memory": "32GB", "price_per_hour": "$0.714/h"},
    ):
        spec = parse_spec(_yaml(minimal, tier))
        pricing = CloudPricing.of(spec.tiers.cloud)
        month = pricing.usage(3.0 * SPEC_MONTH, 0.2 * SPEC_MONTH)
        assert cloud_cost(spec, 3.0, 0.2) == pytest.approx(month)
    assert SECONDS_PER_MONTH == SPEC_MONTH


def _yaml(minimal: dict, cloud: dict) -> str:
    import copy

    import yaml

    data = copy.deepcopy(minimal)
    data["tiers"]["cloud"] = cloud
    return yaml.safe_dump(data)
