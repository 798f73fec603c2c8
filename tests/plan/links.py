"""The LAN and WAN the latency and percentile tests measure against."""

from __future__ import annotations

from tierwise.spec.model import Link

LAN = Link(rtt_p50="1ms", rtt_p99="5ms", bandwidth="1Gbps")
WAN = Link(rtt_p50="60ms", rtt_p99="250ms", bandwidth="20Mbps", loss="1%")
