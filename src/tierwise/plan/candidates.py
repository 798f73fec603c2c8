"""Every way a feature could run: on the device, at the edge, in the cloud, or edge→cloud cascade.

A candidate is (feature, placement, variant[, cascade point]). Its `SiteUse` per site records
what it needs from the resources features share there — device and edge compute, memory,
LAN and WAN bandwidth — and `cost` what it costs on its own. The planner keeps candidates as
columns (`table.py`); `Candidate` and `SiteUse` are the object form of one row (`views.py`),
for reports, the simulator and tests. Per site, with r the rate per device and n the devices there:

    mean = r n;  peak = mean × peak_factor;  share = 1 (cloud), the curve point (cascade), 0
    wan_bps = 8 (share × peak × bytes + upstream events × peak_factor), bytes including
              the protocol's framing in the cloud (`protocol: mqtt`, plan/protocol.py)
    lan_bps = 0 on the device, else 8 × peak × bytes
    local_busy = r × peak_factor × service per device, peak × service at the edge, 0 in cloud
    cost = Σ sites: cloud_cost(share × mean, share × mean × cloud service) + WAN bytes × egress

Whether it meets its deadline is `estimate.py`'s job; choosing among them is `solve.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from tierwise.spec.model import Spec, Variant
from tierwise.spec.tiers import Placement, Tier
from tierwise.spec.units import SECONDS_PER_MONTH

PLACEMENTS = list(Placement)  # a placement's position here is its code in the columns


@dataclass
class SiteUse:
    """What one candidate asks of one site, at peak rate."""

    site: int
    devices: int  # devices of the feature's class at this site
    requests_per_s: float  # mean, all devices of the site
    local_busy: float  # device: utilization of one device; edge: busy workers (erlangs)
    lan_bps: float
    wan_bps: float  # upstream + downstream at peak
    wan_bytes_month: float
    cloud_busy: float  # cloud instance-seconds per second, mean
    rho_own: float = 0.0  # local tier utilization with this candidate alone (estimate.py)
    rho_star: float = 1.0  # highest local utilization that still meets the deadline


@dataclass
class Candidate:
    feature: int
    placement: Placement
    variant: str
    cloud_variant: str | None = None
    escalated: float = 0.0
    accuracy: float | None = None
    service: float = 0.0  # seconds per inference on the local tier (cloud tier for CLOUD)
    cloud_service: float = 0.0  # seconds per escalated inference in the cloud
    memory: float = 0.0  # bytes on the local tier
    cost: float = 0.0  # $/month that grows with this candidate alone (calls, egress)
    sites: list[SiteUse] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # hard constraints it breaks alone

    @property
    def label(self) -> str:
        return candidate_label(self.placement, self.variant, self.cloud_variant, self.escalated)


def candidate_label(
    placement: Placement, variant: str, cloud_variant: str | None, escalated: float
) -> str:
    """`edge int8`, or `cascade int8→full @10%` for a cascade escalating 10%."""
    if placement is Placement.CASCADE:
        return f"cascade {variant}→{cloud_variant} @{escalated:.0%}"
    return f"{placement.value} {variant}"


def service_time(spec: Spec, variant: Variant, tier: Tier, device_class: str) -> float | None:
    """Seconds per inference of a variant on a tier: measured there if given, else the tier's
    hardware profile applied to the variant's MACs or build-machine time, else FLOPs / compute."""
    if tier in variant.latency:
        return variant.latency[tier]
    profile = {
        Tier.DEVICE: spec.tiers.device_class(device_class).profile,
        Tier.EDGE: spec.tiers.edge.profile,
        Tier.CLOUD: None,
    }[tier]
    scaled = None if profile is None else profile.service(variant)
    if scaled is not None:
        return scaled
    if variant.flops is None:
        return None
    capacity = {
        Tier.DEVICE: spec.tiers.device_class(device_class).compute,
        Tier.EDGE: spec.tiers.edge.compute / spec.tiers.edge.workers,
        Tier.CLOUD: spec.tiers.cloud.compute,
    }[tier]
    return variant.flops / capacity if capacity > 0 else None


def tier_memory(spec: Spec, tier: Tier, device_class: str) -> float:
    return {
        Tier.DEVICE: spec.tiers.device_class(device_class).memory,
        Tier.EDGE: spec.tiers.edge.memory,
        Tier.CLOUD: spec.tiers.cloud.memory,
    }[tier]


Amount = TypeVar("Amount", float, NDArray[np.float64])  # one figure, or one per row


def cloud_cost(spec: Spec, calls_per_s: Amount, busy: Amount) -> Amount:
    """$/month of cloud inference: per call, or autoscaled instance time (busy / utilization)."""
    cloud = spec.tiers.cloud
    if cloud.price_per_call is not None:
        return calls_per_s * SECONDS_PER_MONTH * cloud.price_per_call
    assert cloud.price_per_hour is not None
    hours = busy / cloud.max_utilization * SECONDS_PER_MONTH / 3600
    return hours * cloud.price_per_hour
