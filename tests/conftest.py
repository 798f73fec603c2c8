"""Shared test helpers: paths and a minimal valid spec to vary."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

MINIMAL: dict[str, Any] = {
    "name": "minimal",
    "tiers": {
        "device": {"compute": "1GFLOP/s", "memory": "64MB"},
        "edge": {"compute": "100GFLOP/s", "memory": "4GB", "cost": "$50/month"},
        "cloud": {"compute": "500GFLOP/s", "memory": "32GB", "price_per_call": "$0.20/1k"},
    },
    "sites": [{"name": "s1", "devices": 10}],
    "links": {
        "device_edge": {"rtt_p50": "1ms", "rtt_p99": "5ms", "bandwidth": "1Gbps"},
        "edge_cloud": {
            "rtt_p50": "40ms",
            "rtt_p99": "200ms",
            "bandwidth": "50Mbps",
            "availability": "99.5%",
            "mean_outage": "10min",
            "egress": "$0.09/GB",
        },
    },
    "models": [
        {
            "name": "m",
            "variants": [
                {"name": "full", "flops": "10MFLOP", "size": "4MB", "accuracy": "95%"},
                {"name": "int8", "flops": "3MFLOP", "size": "1MB", "accuracy": "94%"},
            ],
        }
    ],
    "features": [
        {
            "name": "f",
            "model": "m",
            "rate": "5/s",
            "payload": "4KB",
            "deadline": "50ms",
        }
    ],
}


@pytest.fixture
def minimal() -> dict[str, Any]:
    """A fresh deep copy of a small valid spec, as the dict YAML would load into."""
    return copy.deepcopy(MINIMAL)
