"""The numbers of a whole assignment — the plan, cloud-only or edge-only — at its real load.

Unlike `estimate.py`, which bounds each candidate alone, this takes every shared queue at the
utilization the assignment actually puts on it, so the figures are what `simulate` and `up`
should measure. An assignment is one candidate per feature (indices into the table); every
figure is computed for all its (candidate, site) pairs at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tierwise.plan.candidates import PLACEMENTS, Candidate, cloud_cost
from tierwise.plan.columns import Array, Index, Mask
from tierwise.plan.estimate import cascade_latency
from tierwise.plan.paths import escalation_paths, local_paths
from tierwise.plan.solve import fixed_cost
from tierwise.plan.table import (
    CASCADE,
    CLOUD,
    DEVICE,
    REACH_RANK,
    CandidateTable,
    build_table,
)
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


@dataclass
class _Pairs:
    """The (candidate, site) pairs of an assignment, and what they load."""

    index: Index  # into the table's pairs
    owner: Index  # the feature of each
    cand: Index
    site: Index
    resource: Index
    local: Mask
    busy: Array  # per shared resource: busy servers (erlangs) or device utilization
    used: Index  # shared resources in order of first use


def evaluate(spec: Spec, name: str, choice: list[Candidate]) -> Outcome:
    """`evaluate_assignment` for candidate objects of `enumerate_candidates(spec)`."""
    table = build_table(spec)
    first, count = table.per_feature()
    index = []
    for cand in choice:
        start = int(first[cand.feature])
        labels = [table.label(c) for c in range(start, start + int(count[cand.feature]))]
        index.append(start + labels.index(cand.label))
    return evaluate_assignment(table, name, np.asarray(index, dtype=np.int64))


def evaluate_assignment(table: CandidateTable, name: str, choice: Index) -> Outcome:
    """Every figure of an assignment (one candidate per feature) at its actual load."""
    pairs = _load(table, choice)
    rho = np.zeros(len(pairs.index))
    with np.errstate(divide="ignore", invalid="ignore"):
        shared = pairs.busy[pairs.resource[pairs.local]]
        rho[pairs.local] = shared / table.servers[pairs.index[pairs.local]]
    wan_full, lan_full = _saturated_links(table, pairs)
    place = table.placement[pairs.cand]
    overloaded = (
        (rho >= 1.0)
        | ((place == CLOUD) & wan_full[pairs.site])
        | ((place != DEVICE) & lan_full[pairs.site])
    )
    service = _mix_wait_service(table, pairs)
    rho_q = np.minimum(rho, 0.999)
    rows = local_paths(table, pairs.index).with_service(service)
    on_time, latency = rows.answers(rho_q)
    on_time[overloaded] = 0.0
    latency[overloaded] = np.inf
    in_time = np.ones(len(pairs.index))
    esc = np.flatnonzero(place == CASCADE)
    if esc.size:
        esc_local = local_paths(table, pairs.index[esc]).with_service(service[esc])
        esc_cloud = escalation_paths(table, pairs.index[esc]).with_service(service[esc])
        in_time[esc] = esc_cloud.on_time(rho_q[esc])
        in_time[esc[wan_full[pairs.site[esc]]]] = 0.0
        share = table.share[pairs.cand[esc]]
        latency[esc] = cascade_latency(esc_local, esc_cloud, share, rho_q[esc])
        latency[esc[overloaded[esc]]] = np.inf
    features = _feature_outcomes(table, choice, pairs, latency, on_time, in_time, rho)
    breakdown = _costs(table, pairs)
    n = len(features)
    return Outcome(
        name=name,
        features=features,
        cost=sum(breakdown.values()),
        cost_breakdown=breakdown,
        upstream_bps=_in_order([o.upstream_bps for o in features]),
        misses_per_month=_in_order([o.misses_per_month for o in features]),
        offline_coverage=sum(o.works_offline for o in features) / n if n else 1.0,
        privacy_violations=sum(o.privacy_violation for o in features),
        gateways=int(
            sum(table.sites.gateways[r] for r in pairs.used if r < len(table.sites.names))
        ),
        cloud_instances=_instances(table, pairs),
    )


def _load(table: CandidateTable, choice: Index) -> _Pairs:
    index, owner = table.pairs_of(choice)
    resource = table.resource[index]
    local = resource >= 0
    n_res = len(table.sites.names) * (1 + len(table.classes))
    weights = table.local_busy[index][local]
    busy = np.bincount(resource[local], weights=weights, minlength=n_res).astype(np.float64)
    found, first = np.unique(resource[local], return_index=True)
    return _Pairs(
        index=index,
        owner=owner,
        cand=table.cand[index],
        site=table.site[index],
        resource=resource,
        local=local,
        busy=busy,
        used=found[np.argsort(first, kind="stable")],
    )


def _feature_outcomes(
    table: CandidateTable,
    choice: Index,
    pairs: _Pairs,
    latency: Array,
    on_time: Array,
    in_time: Array,
    rho: Array,
) -> list[FeatureOutcome]:
    spec, feats = table.spec, table.features
    n = table.n_features
    owner = pairs.owner
    requests = table.requests[pairs.index]
    total = np.bincount(owner, weights=requests, minlength=n)
    has = total > 0
    safe = np.where(has, total, 1.0)
    p_miss = np.where(has, np.bincount(owner, requests * (1 - on_time), n) / safe, 0.0)
    answered = np.where(has, np.bincount(owner, requests * in_time, n) / safe, 1.0)
    worst_latency, worst_rho = _per_feature_max(owner, n, latency), _per_feature_max(owner, n, rho)
    wan_bytes = np.bincount(owner, table.wan_bytes[pairs.index], n)
    place = table.placement[choice]
    accuracy = table.accuracy[choice].copy()
    cascade = place == CASCADE
    if cascade.any():
        templates = [table.templates[int(t)] for t in table.template[choice[cascade]]]
        base = np.array([t.base_accuracy for t in templates])
        joint = np.array([np.nan if t.accuracy is None else t.accuracy for t in templates])
        adjusted = base + (joint - base) * answered[cascade]
        accuracy[cascade] = np.where(np.isnan(joint), accuracy[cascade], adjusted)
    privacy = REACH_RANK[place] > feats.reach
    template = table.template[choice]
    labels = [t.label for t in table.templates]
    variants = [t.variant.name for t in table.templates]
    values = [p.value for p in PLACEMENTS]
    offline = [p.works_offline for p in PLACEMENTS]
    columns = zip(
        spec.features,
        template.tolist(),
        place.tolist(),
        worst_latency.tolist(),
        p_miss.tolist(),
        (p_miss * total * SECONDS_PER_MONTH).tolist(),
        table.share[choice].tolist(),
        np.where(cascade, answered, 1.0).tolist(),
        (8 * wan_bytes / SECONDS_PER_MONTH).tolist(),
        table.cost[choice].tolist(),
        accuracy.tolist(),
        privacy.tolist(),
        worst_rho.tolist(),
        strict=True,
    )
    return [
        FeatureOutcome(
            feature=feature.name,
            placement=values[p],
            variant=variants[t],
            label=labels[t],
            latency=lat,
            deadline=feature.deadline,
            percentile=feature.percentile,
            p_miss=miss,
            misses_per_month=misses,
            escalation_rate=share,
            escalations_in_time=esc_ok,
            upstream_bps=up,
            cost=cost,
            accuracy=None if acc != acc else acc,  # nan: unknown
            works_offline=offline[p],
            privacy_violation=priv,
            utilization=util,
        )
        for feature, t, p, lat, miss, misses, share, esc_ok, up, cost, acc, priv, util in columns
    ]


def _per_feature_max(owner: Index, n: int, values: Array) -> Array:
    """The largest value of each feature's pairs; 0 for a feature with none."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, owner, values)
    return np.where(np.isneginf(out), 0.0, out)


def _mix_wait_service(table: CandidateTable, pairs: _Pairs) -> Array:
    """The service time to put in each path's queue-wait model: E[S²]/E[S] of its queue.

    A shared FIFO queue makes a request wait behind the whole mix of features placed
    there, not behind requests like its own: a 2 ms model next to a 20 ms one waits for
    20 ms jobs. Allen-Cunneen for M/G/c scales the wait by E[S](1 + cs²)/2 of the mix;
    the path model, built for deterministic service, scales it by S/2, so S = E[S²]/E[S]
    gives the mix's wait (and changes nothing where a queue serves one feature).
    """
    service = table.service[pairs.cand]
    local, res = pairs.local, pairs.resource
    busy = table.local_busy[pairs.index]
    second = np.bincount(res[local], weights=(busy * service)[local], minlength=len(pairs.busy))
    first = pairs.busy
    r = np.maximum(res, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mixed = second[r] / first[r]
    return np.where(local & (first[r] > 0), mixed, service)


def _saturated_links(table: CandidateTable, pairs: _Pairs) -> tuple[Mask, Mask]:
    """Sites whose WAN uplink or LAN would carry more than its bandwidth at peak."""
    n_sites = len(table.sites.names)
    wan = np.bincount(pairs.site, weights=table.wan_bps[pairs.index], minlength=n_sites)
    lan = np.bincount(pairs.site, weights=table.lan_bps[pairs.index], minlength=n_sites)
    return wan >= table.sites.wan_capacity, lan >= table.sites.lan_capacity


def _instances(table: CandidateTable, pairs: _Pairs) -> int:
    """Cloud instances running at peak (autoscaled), never fewer than min_instances."""
    cloud = table.spec.tiers.cloud
    peak_factor = table.features.peak_factor[pairs.owner]
    peak = _in_order(table.cloud_busy[pairs.index] * peak_factor)
    return max(cloud.min_instances, int(np.ceil(peak / cloud.max_utilization - 1e-9)))


def _costs(table: CandidateTable, pairs: _Pairs) -> dict[str, float]:
    spec, sites = table.spec, table.sites
    idx = pairs.index
    calls = table.share[pairs.cand] * table.requests[idx]
    cloud_compute = fixed_cost(spec) + _in_order(cloud_cost(spec, calls, table.cloud_busy[idx]))
    egress = _in_order(table.wan_bytes[idx] * sites.egress[pairs.site])
    n_sites = len(sites.names)
    edges = [int(r) for r in pairs.used if r < n_sites]
    devices = [int(r) - n_sites for r in pairs.used if r >= n_sites]
    n_classes = len(table.classes)
    class_cost = [spec.tiers.device_class(c).cost for c in table.classes]
    gateways = _in_order([spec.tiers.edge.cost * spec.sites[s].gateways for s in edges])
    upgrades = _in_order(
        [
            class_cost[d % n_classes]
            * spec.sites[d // n_classes].counts.get(table.classes[d % n_classes], 0)
            for d in devices
        ]
    )
    return {
        "cloud compute": cloud_compute,
        "data transfer": egress,
        "edge gateways": gateways,
        "device upgrades": upgrades,
    }


def _in_order(values: Array | list[float]) -> float:
    """The sum added up left to right, as a loop would (numpy's sum pairs terms up)."""
    cum = np.cumsum(values, dtype=np.float64)
    return float(cum[-1]) if len(cum) else 0.0
