"""Every way a feature could run: on the device, at the edge, in the cloud, or edge→cloud cascade.

A candidate is (feature, placement, variant[, cascade point]). This module enumerates them and
records what each one needs from the resources features share at a site — device and edge
compute, memory, LAN and WAN bandwidth — and what it costs on its own. Whether it meets its
deadline is `estimate.py`'s job; choosing among them is `solve.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tierwise.spec.model import Feature, Reach, Site, Spec, Tier, Variant
from tierwise.spec.units import SECONDS_PER_MONTH, fmt_bandwidth, fmt_size


class Placement(StrEnum):
    DEVICE = "device"
    EDGE = "edge"
    CLOUD = "cloud"
    CASCADE = "cascade"  # answer at the edge, escalate hard cases to the cloud

    @property
    def local_tier(self) -> Tier:
        return _LOCAL_TIER[self]

    @property
    def works_offline(self) -> bool:
        """Keeps answering while the WAN is down (a cascade answers locally, degraded)."""
        return self is not Placement.CLOUD

    @property
    def raw_data_reaches(self) -> Reach:
        return _REACHES[self]


_LOCAL_TIER = {
    Placement.DEVICE: Tier.DEVICE,
    Placement.EDGE: Tier.EDGE,
    Placement.CLOUD: Tier.CLOUD,
    Placement.CASCADE: Tier.EDGE,
}
_REACHES = {
    Placement.DEVICE: Reach.DEVICE,
    Placement.EDGE: Reach.SITE,
    Placement.CLOUD: Reach.CLOUD,
    Placement.CASCADE: Reach.CLOUD,
}


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
        if self.placement is Placement.CASCADE:
            return f"cascade {self.variant}→{self.cloud_variant} @{self.escalated:.0%}"
        return f"{self.placement.value} {self.variant}"


def service_time(spec: Spec, variant: Variant, tier: Tier, device_class: str) -> float | None:
    """Seconds per inference of a variant on a tier: measured if given, else FLOPs / capacity."""
    if tier in variant.latency:
        return variant.latency[tier]
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


ResourceKey = tuple[str, int, str]  # ("edge", site, "") or ("device", site, device class)


def shared_resource(spec: Spec, cand: Candidate, site: int) -> ResourceKey | None:
    """The local compute a candidate shares with others at a site; None in the cloud."""
    if cand.placement is Placement.DEVICE:
        return ("device", site, spec.features[cand.feature].device_class)
    if cand.placement is Placement.CLOUD:
        return None
    return ("edge", site, "")


def cloud_cost(spec: Spec, calls_per_s: float, busy: float) -> float:
    """$/month of cloud inference: per call, or autoscaled instance time (busy / utilization)."""
    cloud = spec.tiers.cloud
    if cloud.price_per_call is not None:
        return calls_per_s * SECONDS_PER_MONTH * cloud.price_per_call
    assert cloud.price_per_hour is not None
    hours = busy / cloud.max_utilization * SECONDS_PER_MONTH / 3600
    return hours * cloud.price_per_hour


def enumerate_candidates(spec: Spec) -> list[list[Candidate]]:
    """All candidates of every feature, in feature order."""
    return [list(_feature_candidates(spec, i, f)) for i, f in enumerate(spec.features)]


def _feature_candidates(spec: Spec, index: int, feature: Feature) -> list[Candidate]:
    model = spec.model(feature.model)
    sites = spec.feature_sites(feature)
    allowed = [v for v in model.variants if feature.variants is None or v.name in feature.variants]
    out: list[Candidate] = []
    for placement in (Placement.DEVICE, Placement.EDGE, Placement.CLOUD):
        for variant in allowed:
            cand = Candidate(index, placement, variant.name, accuracy=variant.accuracy)
            if _fill(spec, feature, sites, cand, variant, None):
                out.append(cand)
    if model.cascade is not None:
        names = {v.name for v in allowed}
        if model.cascade.edge in names and model.cascade.cloud in names:
            edge_v = model.variant(model.cascade.edge)
            cloud_v = model.variant(model.cascade.cloud)
            for point in model.cascade.curve:
                if point.escalated <= 0:
                    continue  # escalating nothing is the plain edge candidate
                cand = Candidate(
                    index,
                    Placement.CASCADE,
                    edge_v.name,
                    cloud_variant=cloud_v.name,
                    escalated=point.escalated,
                    accuracy=point.accuracy,
                )
                if _fill(spec, feature, sites, cand, edge_v, cloud_v):
                    out.append(cand)
    return out


def _fill(
    spec: Spec,
    feature: Feature,
    sites: list[Site],
    cand: Candidate,
    variant: Variant,
    cloud_v: Variant | None,
) -> bool:
    """Fill in resource use and standalone violations; False if the variant cannot run there."""
    tier = cand.placement.local_tier
    service = service_time(spec, variant, tier, feature.device_class)
    if service is None:
        return False  # no figure for this tier: the variant is not built for it
    cand.service = service
    cand.memory = variant.size
    if cloud_v is not None:
        cloud_service = service_time(spec, cloud_v, Tier.CLOUD, feature.device_class)
        if cloud_service is None:
            return False
        cand.cloud_service = cloud_service
    _check_standalone(spec, feature, cand, tier, cloud_v)
    _site_uses(spec, feature, sites, cand)
    _check_links(spec, cand)
    return True


def _check_links(spec: Spec, cand: Candidate) -> None:
    """A candidate that alone fills a site's WAN uplink or LAN can never be picked."""
    lan = spec.links.device_edge
    for use in cand.sites:
        site = spec.sites[use.site]
        wan = spec.wan(site)
        usable = spec.capacity(wan, site) * wan.max_utilization
        if use.wan_bps > usable:
            cand.violations.append(
                f"WAN at {site.name}: needs {fmt_bandwidth(use.wan_bps)} > "
                f"{fmt_bandwidth(usable)} usable"
            )
            return
        usable = spec.capacity(lan, site) * lan.max_utilization
        if use.lan_bps > usable:
            cand.violations.append(
                f"LAN at {site.name}: needs {fmt_bandwidth(use.lan_bps)} > "
                f"{fmt_bandwidth(usable)} usable"
            )
            return


def _check_standalone(
    spec: Spec, feature: Feature, cand: Candidate, tier: Tier, cloud_v: Variant | None
) -> None:
    p = cand.placement
    if feature.scope == "global" and p is not Placement.CLOUD:
        cand.violations.append("needs every site's data (scope: global)")
    if p.raw_data_reaches.rank > feature.raw_data_may_reach.rank:
        cand.violations.append(f"raw data may not leave the {feature.raw_data_may_reach.value}")
    if feature.offline and not p.works_offline:
        cand.violations.append("must work offline")
    memory = tier_memory(spec, tier, feature.device_class)
    if cand.memory > memory:
        cand.violations.append(
            f"{cand.variant} needs {fmt_size(cand.memory)} > {fmt_size(memory)} {tier.value} memory"
        )
    if cloud_v is not None and cloud_v.size > spec.tiers.cloud.memory:
        cand.violations.append(f"{cloud_v.name} does not fit a cloud instance's memory")
    # a cascade's accuracy also depends on escalations arriving in time: estimate.py checks it
    required = feature.min_accuracy
    if required is not None and p is not Placement.CASCADE and (cand.accuracy or 0.0) < required:
        shown = "unknown" if cand.accuracy is None else f"{cand.accuracy:.1%}"
        cand.violations.append(f"accuracy {shown} < required {required:.1%}")


def _site_uses(spec: Spec, feature: Feature, sites: list[Site], cand: Candidate) -> None:
    p = cand.placement
    index = spec.site_index
    sent_bytes = feature.payload + feature.result  # one request across a link and back
    cost = 0.0
    for site in sites:
        devices = site.counts.get(feature.device_class, 0)
        if devices == 0:
            continue
        mean = feature.rate * devices
        peak = mean * feature.peak_factor
        wan = spec.wan(site)
        escalated = (
            cand.escalated if p is Placement.CASCADE else (1.0 if p is Placement.CLOUD else 0)
        )
        up_events = 0.0
        if p is not Placement.CLOUD and feature.upstream is not None:
            up_events = feature.upstream.rate * devices * feature.upstream.size
        wan_bps = 8 * (escalated * peak * sent_bytes + up_events * feature.peak_factor)
        wan_bytes = (escalated * mean * sent_bytes + up_events) * SECONDS_PER_MONTH
        lan_bps = 0.0 if p is Placement.DEVICE else 8 * peak * sent_bytes
        if p is Placement.DEVICE:
            local_busy = feature.rate * feature.peak_factor * cand.service  # per device
        elif p is Placement.CLOUD:
            local_busy = 0.0
        else:
            local_busy = peak * cand.service
        cloud_s = cand.service if p is Placement.CLOUD else cand.cloud_service
        cloud_busy = escalated * mean * cloud_s
        cand.sites.append(
            SiteUse(
                index[site.name], devices, mean, local_busy, lan_bps, wan_bps, wan_bytes, cloud_busy
            )
        )
        cost += cloud_cost(spec, escalated * mean, cloud_busy)
        cost += wan_bytes * wan.egress  # egress is parsed to $ per byte
    cand.cost = cost
