"""The numbers of a whole assignment — the plan, cloud-only or edge-only — at its real load.

Unlike `estimate.py`, which bounds each candidate alone, this takes every shared queue at the
utilization the assignment actually puts on it, so the figures are what `simulate` and `up`
should measure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from tierwise.plan.candidates import (
    Candidate,
    Placement,
    ResourceKey,
    SiteUse,
    cloud_cost,
    shared_resource,
)
from tierwise.plan.estimate import (
    cascade_base_accuracy,
    cascade_latency,
    escalation_paths,
    local_paths,
    local_servers,
)
from tierwise.plan.solve import fixed_cost
from tierwise.spec.model import Spec
from tierwise.spec.units import SECONDS_PER_MONTH


@dataclass
class FeatureOutcome:
    feature: str
    placement: str
    variant: str
    label: str
    latency: float  # at the feature's percentile, worst site (inf when overloaded)
    deadline: float
    percentile: float
    p_miss: float  # share of requests answered late or not at all (outages included)
    misses_per_month: float
    escalation_rate: float  # share of requests sent to the cloud
    escalations_in_time: float  # cascade: share of escalations answered before the deadline
    upstream_bps: float  # mean, all sites
    cost: float  # $/month attributable to this feature alone (calls, egress)
    accuracy: float | None
    works_offline: bool
    privacy_violation: bool
    utilization: float  # of the local tier it shares, worst site

    @property
    def meets_deadline(self) -> bool:
        return self.p_miss <= 1 - self.percentile / 100 + 1e-12


@dataclass
class Outcome:
    """One assignment's figures: per feature and in total."""

    name: str
    features: list[FeatureOutcome]
    cost: float  # $/month in total
    cost_breakdown: dict[str, float]
    upstream_bps: float
    misses_per_month: float
    offline_coverage: float  # share of features still answering while the WAN is down
    privacy_violations: int
    gateways: int
    cloud_instances: int


def evaluate(spec: Spec, name: str, choice: list[Candidate]) -> Outcome:
    """Every figure of an assignment (one candidate per feature) at its actual load."""
    busy: dict[ResourceKey, float] = defaultdict(float)
    for cand in choice:
        for use in cand.sites:
            key = shared_resource(spec, cand, use.site)
            if key is not None:
                busy[key] += use.local_busy
    pairs = [(c, u) for c in choice for u in c.sites]
    rho = np.array([_utilization(spec, c, u.site, busy) for c, u in pairs])
    wan_full, lan_full = _saturated_links(spec, choice)
    overloaded = (rho >= 1.0) | np.array(
        [
            (c.placement is Placement.CLOUD and u.site in wan_full)
            or (c.placement is not Placement.DEVICE and u.site in lan_full)
            for c, u in pairs
        ],
        dtype=bool,
    )
    wait_service = _mix_wait_service(spec, pairs)
    rows = local_paths(spec, pairs)
    rows.service = wait_service
    on_time = rows.on_time(np.minimum(rho, 0.999))
    on_time[overloaded] = 0.0
    latency = rows.latency(np.minimum(rho, 0.999))
    latency[overloaded] = np.inf
    in_time = np.ones(len(pairs))
    esc = [i for i, (c, _) in enumerate(pairs) if c.placement is Placement.CASCADE]
    if esc:
        sub = [pairs[i] for i in esc]
        esc_local, esc_cloud = local_paths(spec, sub), escalation_paths(spec, sub)
        esc_local.service = esc_cloud.service = wait_service[esc]
        in_time[esc] = esc_cloud.on_time(np.minimum(rho[esc], 0.999))
        in_time[[i for i in esc if pairs[i][1].site in wan_full]] = 0.0
        share = np.array([c.escalated for c, _ in sub])
        rho_esc = np.minimum(rho[esc], 0.999)
        latency[esc] = cascade_latency(esc_local, esc_cloud, share, rho_esc)
        latency[[i for i in esc if overloaded[i]]] = np.inf

    per_feature: dict[int, list[int]] = defaultdict(list)
    for i, (cand, _) in enumerate(pairs):
        per_feature[cand.feature].append(i)
    outcomes = []
    for cand in choice:
        idx = per_feature.get(cand.feature, [])
        outcomes.append(_feature_outcome(spec, cand, idx, pairs, latency, on_time, in_time, rho))

    breakdown = _costs(spec, choice, busy)
    return Outcome(
        name=name,
        features=outcomes,
        cost=sum(breakdown.values()),
        cost_breakdown=breakdown,
        upstream_bps=sum(o.upstream_bps for o in outcomes),
        misses_per_month=sum(o.misses_per_month for o in outcomes),
        offline_coverage=(
            sum(o.works_offline for o in outcomes) / len(outcomes) if outcomes else 1.0
        ),
        privacy_violations=sum(o.privacy_violation for o in outcomes),
        gateways=sum(spec.sites[k[1]].gateways for k in busy if k[0] == "edge"),
        cloud_instances=_instances(spec, choice),
    )


def _feature_outcome(
    spec: Spec,
    cand: Candidate,
    idx: list[int],
    pairs: list[tuple[Candidate, SiteUse]],
    latency: np.ndarray,
    on_time: np.ndarray,
    in_time: np.ndarray,
    rho: np.ndarray,
) -> FeatureOutcome:
    feature = spec.features[cand.feature]
    uses = [pairs[i][1] for i in idx]
    requests = np.array([u.requests_per_s for u in uses])
    total = requests.sum()
    p_miss = float(np.dot(requests, 1 - on_time[idx]) / total) if total else 0.0
    escalation = _escalated(cand)
    accuracy = cand.accuracy
    answered_in_time = float(np.dot(requests, in_time[idx]) / total) if total else 1.0
    if cand.placement is Placement.CASCADE:
        model = spec.model(feature.model)
        assert model.cascade is not None
        joint = next(
            (p.accuracy for p in model.cascade.curve if p.escalated == cand.escalated), None
        )
        base = cascade_base_accuracy(spec, cand)
        if joint is not None:
            accuracy = base + (joint - base) * answered_in_time
    wan_bytes = sum(u.wan_bytes_month for u in uses)
    return FeatureOutcome(
        feature=feature.name,
        placement=cand.placement.value,
        variant=cand.variant,
        label=cand.label,
        latency=float(latency[idx].max()) if idx else 0.0,
        deadline=feature.deadline,
        percentile=feature.percentile,
        p_miss=p_miss,
        misses_per_month=p_miss * total * SECONDS_PER_MONTH,
        escalation_rate=escalation,
        escalations_in_time=answered_in_time if cand.placement is Placement.CASCADE else 1.0,
        upstream_bps=8 * wan_bytes / SECONDS_PER_MONTH,
        cost=cand.cost,
        accuracy=accuracy,
        works_offline=cand.placement.works_offline,
        privacy_violation=cand.placement.raw_data_reaches.rank > feature.raw_data_may_reach.rank,
        utilization=float(rho[idx].max()) if idx else 0.0,
    )


def _mix_wait_service(spec: Spec, pairs: list[tuple[Candidate, SiteUse]]) -> np.ndarray:
    """The service time to put in each path's queue-wait model: E[S²]/E[S] of its queue.

    A shared FIFO queue makes a request wait behind the whole mix of features placed
    there, not behind requests like its own: a 2 ms model next to a 20 ms one waits for
    20 ms jobs. Allen-Cunneen for M/G/c scales the wait by E[S](1 + cs²)/2 of the mix;
    the path model, built for deterministic service, scales it by S/2, so S = E[S²]/E[S]
    gives the mix's wait (and changes nothing where a queue serves one feature).
    """
    first: dict[ResourceKey, float] = defaultdict(float)  # sum of rate × S (busy)
    second: dict[ResourceKey, float] = defaultdict(float)  # sum of rate × S²
    keys = [shared_resource(spec, c, u.site) for c, u in pairs]
    for (cand, use), key in zip(pairs, keys, strict=True):
        if key is not None:
            first[key] += use.local_busy
            second[key] += use.local_busy * cand.service
    return np.array(
        [
            second[k] / first[k] if k is not None and first[k] > 0 else c.service
            for (c, _), k in zip(pairs, keys, strict=True)
        ]
    )


def _saturated_links(spec: Spec, choice: list[Candidate]) -> tuple[set[int], set[int]]:
    """Sites whose WAN uplink or LAN would carry more than its bandwidth at peak."""
    wan: dict[int, float] = defaultdict(float)
    lan: dict[int, float] = defaultdict(float)
    for cand in choice:
        for use in cand.sites:
            wan[use.site] += use.wan_bps
            lan[use.site] += use.lan_bps
    sites = spec.sites
    wan_full = {s for s, bps in wan.items() if bps >= spec.capacity(spec.wan(sites[s]), sites[s])}
    lan = {
        s: bps for s, bps in lan.items() if bps >= spec.capacity(spec.links.device_edge, sites[s])
    }
    return wan_full, set(lan)


def _escalated(cand: Candidate) -> float:
    """Share of a candidate's requests answered in the cloud."""
    return {Placement.CLOUD: 1.0, Placement.CASCADE: cand.escalated}.get(cand.placement, 0.0)


def _utilization(spec: Spec, cand: Candidate, site: int, busy: dict[ResourceKey, float]) -> float:
    key = shared_resource(spec, cand, site)
    return busy[key] / local_servers(spec, cand, site) if key is not None else 0.0


def _instances(spec: Spec, choice: list[Candidate]) -> int:
    """Cloud instances running at peak (autoscaled), never fewer than min_instances."""
    cloud = spec.tiers.cloud
    peak = sum(u.cloud_busy * spec.features[c.feature].peak_factor for c in choice for u in c.sites)
    return max(cloud.min_instances, int(np.ceil(peak / cloud.max_utilization - 1e-9)))


def _costs(spec: Spec, choice: list[Candidate], busy: dict[ResourceKey, float]) -> dict[str, float]:
    cloud_compute = fixed_cost(spec) + sum(
        cloud_cost(spec, _escalated(c) * u.requests_per_s, u.cloud_busy)
        for c in choice
        for u in c.sites
    )
    egress = sum(
        u.wan_bytes_month * spec.wan(spec.sites[u.site]).egress for c in choice for u in c.sites
    )
    gateways = sum(spec.tiers.edge.cost * spec.sites[k[1]].gateways for k in busy if k[0] == "edge")
    devices = sum(
        spec.tiers.device_class(k[2]).cost * spec.sites[k[1]].device_counts().get(k[2], 0)
        for k in busy
        if k[0] == "device"
    )
    return {
        "cloud compute": cloud_compute,
        "data transfer": egress,
        "edge gateways": gateways,
        "device upgrades": devices,
    }
