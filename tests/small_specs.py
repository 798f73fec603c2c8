"""A small valid spec, as the dict YAML loads into, and the way tests and benchmarks vary it.

Each use names only what it changes, so the parts every small spec shares are written once
(and a field the spec grows is added here once).
"""

from __future__ import annotations

import copy
from typing import Any

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


def varied(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of `base` with `changes` set (base itself is left alone).

    A change is named by its path, keys and list indexes joined by `__`:
    `varied(MINIMAL, links__edge_cloud__rtt_p99="10ms", features__0__offline=True)`.
    """
    data = copy.deepcopy(base)
    for path, value in changes.items():
        node = data
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        node[keys[-1]] = value
    return data


def cascade_model(
    name: str, edge: dict[str, str], cloud: dict[str, str], curve: dict[str, str]
) -> dict[str, Any]:
    """A model whose `edge` variant escalates its least confident cases to its `cloud` one.

    `curve` maps the share escalated to the accuracy reached, e.g. {"0%": "90%", "20%": "96%"}.
    """
    return {
        "name": name,
        "variants": [edge, cloud],
        "cascade": {
            "edge": edge["name"],
            "cloud": cloud["name"],
            "curve": [{"escalated": e, "accuracy": a} for e, a in curve.items()],
        },
    }
