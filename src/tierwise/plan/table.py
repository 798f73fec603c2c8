"""Every candidate of every feature as columns: one row per candidate, one per (candidate, site).

Features of the same model, allowed variants and device class have the same candidate
*shapes* (placement, variant, cascade point, service times): those are built once as
templates, then expanded to all features and all their sites with numpy. The table also
flags the rules each candidate breaks on its own (`Standalone`, `check_standalone`); their
words are `violations.py`'s, and `Candidate` objects are views of rows (`views.py`), built
only where a report or tool needs them.

The arithmetic per (candidate, site) keeps the order of operations of the per-object
formulas in candidates.py's docstrings, so figures are the same to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

import numpy as np

from tierwise.plan.candidates import (
    PLACEMENTS,
    candidate_label,
    cloud_cost,
    service_time,
    tier_memory,
)
from tierwise.plan.columns import (
    Array,
    FeatureColumns,
    Index,
    Mask,
    SiteColumns,
    device_classes,
    feature_columns,
    segments,
    site_columns,
)
from tierwise.plan.latency import Dist
from tierwise.spec.model import Spec, Variant
from tierwise.spec.tiers import Placement
from tierwise.spec.units import SECONDS_PER_MONTH

DEVICE, EDGE, CLOUD, CASCADE = (PLACEMENTS.index(p) for p in Placement)
REACH_RANK = np.array([p.raw_data_reaches.rank for p in PLACEMENTS], dtype=np.int64)


@dataclass(frozen=True)
class Template:
    """One candidate shape: what a feature of this model and device class could run."""

    placement: Placement
    variant: Variant
    cloud_variant: Variant | None
    escalated: float
    accuracy: float | None
    service: float
    cloud_service: float
    memory_limit: float  # of the local tier
    base_accuracy: float  # a cascade's edge model alone; else unused

    @property
    def label(self) -> str:
        cloud = self.cloud_variant.name if self.cloud_variant is not None else None
        return candidate_label(self.placement, self.variant.name, cloud, self.escalated)


@dataclass
class CandidateTable:
    """Candidates (index c) and their (candidate, site) pairs (index p), as arrays."""

    spec: Spec
    classes: list[str]
    sites: SiteColumns
    features: FeatureColumns
    templates: list[Template]
    # per candidate
    feature: Index
    template: Index
    placement: Index  # position in PLACEMENTS
    share: Array  # share of requests answered in the cloud: 1 for CLOUD, a cascade's point
    accuracy: Array  # nan = unknown; a cascade's counts only escalations answered in time
    service: Array
    cloud_service: Array
    memory: Array
    cost: Array  # $/month that grows with this candidate alone
    pair_start: Index
    n_pairs: Index
    # per pair
    cand: Index
    site: Index
    devices: Array
    requests: Array  # mean requests/s, all devices of the site
    local_busy: Array
    lan_bps: Array
    wan_bps: Array
    wan_bytes: Array  # per month
    cloud_busy: Array
    resource: Index  # shared local resource (see `resource_id`); -1 in the cloud
    servers: Array  # parallel servers of the local tier; 0 in the cloud
    cap: Array  # max_utilization of the local tier; 1 in the cloud
    # what each candidate breaks on its own, before any deadline is checked
    standalone: Index  # bit set of Standalone rules
    link_pair: Index  # first pair whose WAN or LAN it fills alone; -1 if none
    # filled by estimate.assess_table
    assessed: bool = False
    rho_own: Array = field(default_factory=lambda: np.zeros(0))
    rho_star: Array = field(default_factory=lambda: np.zeros(0))
    late_kind: Index = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # LATE_*
    latency_own: Array = field(default_factory=lambda: np.zeros(0))
    miss_own: Array = field(default_factory=lambda: np.zeros(0))
    in_time: Array = field(default_factory=lambda: np.zeros(0))  # cascade: worst site
    accuracy_short: Mask = field(default_factory=lambda: np.zeros(0, dtype=bool))
    violated: Mask = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # violations in words per candidate: violations.describe fills it, assessing empties it
    texts: dict[int, list[str]] = field(default_factory=dict, repr=False)
    nets: dict[int, Dist] = field(default_factory=dict, repr=False)  # paths.py's cache

    @property
    def n_candidates(self) -> int:
        return len(self.feature)

    @property
    def n_features(self) -> int:
        return len(self.features.rate)

    @property
    def feasible(self) -> Mask:
        return ~self.violated

    def per_feature(self) -> tuple[Index, Index]:
        """Candidates are grouped by feature: (first candidate, count) of each feature."""
        count = np.bincount(self.feature, minlength=self.n_features)
        first = np.zeros(self.n_features, dtype=np.int64)
        np.cumsum(count[:-1], out=first[1:])
        return first, count

    def pairs_of(self, cands: Index) -> tuple[Index, Index]:
        """The pairs of some candidates, in order: (pair indices, position in `cands`)."""
        return segments(self.pair_start[cands], self.n_pairs[cands])

    def label(self, c: int) -> str:
        return self.templates[int(self.template[c])].label

    def variant(self, c: int) -> str:
        return self.templates[int(self.template[c])].variant.name

    def mark_assessed(self) -> None:
        """Deadlines are checked: violations now include them (words made before are stale)."""
        self.assessed = True
        self.texts.clear()


class Standalone(IntFlag):
    """Rules a candidate breaks whatever else is placed."""

    SCOPE = 1  # a global feature needs every site's data: only the cloud has it
    PRIVACY = 2  # raw data would travel further than allowed
    OFFLINE = 4  # must keep answering with the WAN down
    MEMORY = 8  # the variant does not fit its tier
    CLOUD_MEMORY = 16  # a cascade's cloud variant does not fit a cloud instance
    ACCURACY = 32  # below min_accuracy (a cascade's is checked after its deadlines)
    ESCALATION_BUDGET = 64  # a cascade escalating more than its model's cascade budget allows


LATE_CAPACITY, LATE_DEADLINE = 1, 2  # table.late_kind per pair


def check_standalone(table: CandidateTable) -> None:
    """Set `standalone` and `link_pair` of every candidate, and the first `violated`."""
    feats, f, place = table.features, table.feature, table.placement
    spec = table.spec
    limit = np.array([t.memory_limit for t in table.templates])[table.template]
    cloud_size = np.array(
        [t.cloud_variant.size if t.cloud_variant is not None else 0.0 for t in table.templates]
    )[table.template]
    accuracy = np.nan_to_num(table.accuracy, nan=0.0)
    required = feats.min_accuracy[f]
    rules = [
        (Standalone.SCOPE, feats.global_scope[f] & (place != CLOUD)),
        (Standalone.PRIVACY, REACH_RANK[place] > feats.reach[f]),
        (Standalone.OFFLINE, feats.offline[f] & (place == CLOUD)),
        (Standalone.MEMORY, table.memory > limit),
        (Standalone.CLOUD_MEMORY, (place == CASCADE) & (cloud_size > spec.tiers.cloud.memory)),
        (Standalone.ACCURACY, ~np.isnan(required) & (place != CASCADE) & (accuracy < required)),
        (Standalone.ESCALATION_BUDGET, (place == CASCADE) & over_escalation_budget(table)),
    ]
    bits = np.zeros(table.n_candidates, dtype=np.int64)
    for flag, broken in rules:
        bits |= np.where(broken, int(flag), 0)
    table.standalone = bits
    # a candidate that alone fills a site's WAN uplink or LAN can never be picked
    s = table.site
    full = (table.wan_bps > table.sites.wan_usable[s]) | (table.lan_bps > table.sites.lan_usable[s])
    failing = np.flatnonzero(full)
    first_of, at = np.unique(table.cand[failing], return_index=True)
    table.link_pair = np.full(table.n_candidates, -1, dtype=np.int64)
    table.link_pair[first_of] = failing[at]
    table.violated = (bits != 0) | (table.link_pair >= 0)


def escalation_budgets(spec: Spec) -> tuple[Array, Array]:
    """Per feature: the share and the requests/s (fleet-wide) its cascade may escalate; inf
    where its model's cascade sets no budget."""
    share, rate = [], []
    for feature in spec.features:
        cascade = spec.model(feature.model).cascade
        most_share = None if cascade is None else cascade.max_escalated
        most_rate = None if cascade is None else cascade.max_escalation_rate
        share.append(np.inf if most_share is None else most_share)
        rate.append(np.inf if most_rate is None else most_rate)
    return np.asarray(share, dtype=float), np.asarray(rate, dtype=float)


def fleet_rate(table: CandidateTable) -> Array:
    """Mean requests/s of each feature over all its sites."""
    feats = table.features
    per_site = feats.rate[np.repeat(np.arange(len(feats.rate)), feats.n_sites)] * feats.site_devices
    totals = np.zeros(len(feats.rate))
    np.add.at(totals, np.repeat(np.arange(len(feats.rate)), feats.n_sites), per_site)
    return totals


def over_escalation_budget(table: CandidateTable) -> Mask:
    """Candidates whose escalated share, or the requests/s it sends fleet-wide, is over budget."""
    share_budget, rate_budget = escalation_budgets(table.spec)
    f = table.feature
    escalations = table.share * fleet_rate(table)[f]
    over: Mask = (table.share > share_budget[f] + 1e-12) | (escalations > rate_budget[f] + 1e-9)
    return over


def resource_id(n_sites: int, n_classes: int, placement: Index, site: Index, cls: Index) -> Index:
    """The shared local resource of a pair: the edge of site s is s, the devices of class k
    at site s are n_sites + s * n_classes + k; the cloud is -1 (it autoscales)."""
    device = n_sites + site * n_classes + cls
    local = np.where(placement == DEVICE, device, site)
    return np.where(placement == CLOUD, -1, local)


def build_table(spec: Spec) -> CandidateTable:
    """All candidates of all features, with their standalone violations (not yet assessed)."""
    classes = device_classes(spec)
    sites = site_columns(spec, classes)
    feats = feature_columns(spec, classes, sites)
    templates, per_key, feature_key = _templates(spec)
    key_first = np.zeros(len(per_key) + 1, dtype=np.int64)
    np.cumsum([len(k) for k in per_key], out=key_first[1:])
    n_of_key = np.diff(key_first)
    key = np.asarray(feature_key, dtype=np.int64)
    template, feature = segments(key_first[key], n_of_key[key])

    t_placement = np.array([PLACEMENTS.index(t.placement) for t in templates], dtype=np.int64)
    t_escalated = np.array([t.escalated for t in templates])
    t_accuracy = np.array([np.nan if t.accuracy is None else t.accuracy for t in templates])
    t_service = np.array([t.service for t in templates])
    t_cloud_service = np.array([t.cloud_service for t in templates])
    t_memory = np.array([t.variant.size for t in templates])
    placement = t_placement[template]
    service = t_service[template]
    cloud_service = t_cloud_service[template]
    share = np.where(placement == CLOUD, 1.0, t_escalated[template])

    # pairs: every candidate at every site of its feature
    n_pairs = feats.n_sites[feature]
    pos, cand = segments(feats.site_ptr[feature], n_pairs)
    pair_start = np.zeros(len(feature), dtype=np.int64)
    np.cumsum(n_pairs[:-1], out=pair_start[1:])
    f = feature[cand]
    p_place = placement[cand]
    site = feats.site_idx[pos]
    devices = feats.site_devices[pos]
    rate, peak_factor, n_bytes = feats.rate[f], feats.peak_factor[f], feats.n_bytes[f]
    mean = rate * devices
    peak = mean * peak_factor
    pair_share = share[cand]
    local_up = feats.has_upstream[f] & (p_place != CLOUD)
    up_events = np.where(local_up, feats.upstream_rate[f] * devices * feats.upstream_size[f], 0.0)
    # In the cloud, devices send each request across the WAN themselves: with its protocol's
    # framing (MQTT to a cloud broker); escalations go edge->cloud over the agent's link.
    wan_n_bytes = n_bytes + np.where(p_place == CLOUD, feats.wan_framing[f], 0.0)
    wan_bps = 8 * (pair_share * peak * wan_n_bytes + up_events * peak_factor)
    wan_bytes = (pair_share * mean * wan_n_bytes + up_events) * SECONDS_PER_MONTH
    lan_bps = np.where(p_place == DEVICE, 0.0, 8 * peak * n_bytes)
    svc = service[cand]
    local_busy = np.where(
        p_place == DEVICE,
        rate * peak_factor * svc,
        np.where(p_place == CLOUD, 0.0, peak * svc),
    )
    cloud_s = np.where(p_place == CLOUD, svc, cloud_service[cand])
    cloud_busy = pair_share * mean * cloud_s
    egress = wan_bytes * sites.egress[site]
    # summed in the order cloud, egress, cloud, egress... per candidate, as one loop would
    terms = np.stack([cloud_cost(spec, pair_share * mean, cloud_busy), egress], axis=1)
    per_cand = np.repeat(cand, 2)
    cost = np.bincount(per_cand, weights=terms.ravel(), minlength=len(feature)).astype(float)

    cls = feats.device_class[f]
    n_sites, n_classes = len(spec.sites), len(classes)
    device_cap = np.array([spec.tiers.device_class(c).max_utilization for c in classes])
    table = CandidateTable(
        spec=spec,
        classes=classes,
        sites=sites,
        features=feats,
        templates=templates,
        feature=feature,
        template=template,
        placement=placement,
        share=share,
        accuracy=t_accuracy[template].copy(),
        service=service,
        cloud_service=cloud_service,
        memory=t_memory[template],
        cost=cost,
        pair_start=pair_start,
        n_pairs=n_pairs,
        cand=cand,
        site=site,
        devices=devices,
        requests=mean,
        local_busy=local_busy,
        lan_bps=lan_bps,
        wan_bps=wan_bps,
        wan_bytes=wan_bytes,
        cloud_busy=cloud_busy,
        resource=resource_id(n_sites, n_classes, p_place, site, cls),
        servers=np.where(
            p_place == DEVICE, 1.0, np.where(p_place == CLOUD, 0.0, sites.edge_servers[site])
        ),
        cap=np.where(
            p_place == DEVICE,
            device_cap[cls],
            np.where(p_place == CLOUD, 1.0, spec.tiers.edge.max_utilization),
        ),
        standalone=np.zeros(len(feature), dtype=np.int64),
        link_pair=np.full(len(feature), -1, dtype=np.int64),
    )
    check_standalone(table)
    return table


def _templates(spec: Spec) -> tuple[list[Template], list[list[Template]], list[int]]:
    """Templates of every distinct (model, allowed variants, device class), and each
    feature's key into them."""
    keys: dict[tuple[str, tuple[str, ...] | None, str], int] = {}
    per_key: list[list[Template]] = []
    feature_key = []
    for feature in spec.features:
        allowed = None if feature.variants is None else tuple(feature.variants)
        k = (feature.model, allowed, feature.device_class)
        i = keys.get(k)
        if i is None:
            i = keys[k] = len(per_key)
            per_key.append(_shapes(spec, *k))
        feature_key.append(i)
    return [t for shapes in per_key for t in shapes], per_key, feature_key


def _shapes(
    spec: Spec, model_name: str, allowed_names: tuple[str, ...] | None, device_class: str
) -> list[Template]:
    """Device, edge and cloud per allowed variant, then the cascade's curve points; a variant
    with no latency or FLOPs figure for a tier is not built for it."""
    model = spec.model(model_name)
    allowed = [v for v in model.variants if allowed_names is None or v.name in allowed_names]
    out: list[Template] = []
    for placement in (Placement.DEVICE, Placement.EDGE, Placement.CLOUD):
        tier = placement.local_tier
        limit = tier_memory(spec, tier, device_class)
        for variant in allowed:
            service = service_time(spec, variant, tier, device_class)
            if service is not None:
                out.append(
                    Template(
                        placement, variant, None, 0.0, variant.accuracy, service, 0.0, limit, 0
                    )
                )
    cascade = model.cascade
    names = {v.name for v in allowed}
    if cascade is None or cascade.edge not in names or cascade.cloud not in names:
        return out
    edge_v, cloud_v = model.variant(cascade.edge), model.variant(cascade.cloud)
    service = service_time(spec, edge_v, Placement.CASCADE.local_tier, device_class)
    cloud_service = service_time(spec, cloud_v, Placement.CLOUD.local_tier, device_class)
    if service is None or cloud_service is None:
        return out
    at_zero = [p.accuracy for p in cascade.curve if p.escalated == 0]
    base = at_zero[0] if at_zero else (edge_v.accuracy if edge_v.accuracy is not None else 0.0)
    limit = tier_memory(spec, Placement.CASCADE.local_tier, device_class)
    for point in cascade.curve:
        if point.escalated <= 0:
            continue  # escalating nothing is the plain edge candidate
        out.append(
            Template(
                Placement.CASCADE,
                edge_v,
                cloud_v,
                point.escalated,
                point.accuracy,
                service,
                cloud_service,
                limit,
                base,
            )
        )
    return out
