"""The spec as arrays: one row per site and one per feature, so planning is vectorized.

A fleet spec has thousands of features; reading their fields once into numpy columns lets
every later step (candidates, deadlines, the MILP, the strategies) work on whole arrays
instead of calling into pydantic objects per candidate and site.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tierwise.plan.protocol import mqtt_exchange_overhead
from tierwise.spec.model import Feature, Link, Spec

Array = NDArray[np.float64]
Index = NDArray[np.int64]
Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class SiteColumns:
    """Per site: gateways, link capacities and the figures of its own WAN."""

    names: list[str]
    gateways: Array
    edge_servers: Array  # gateways × workers: parallel inferences at the edge
    devices: Array  # (sites, device classes): devices of each class
    wan: list[Link]  # each site's WAN link (its own, or the default)
    wan_capacity: Array  # bits/s, all gateways together
    wan_usable: Array  # capacity × max_utilization
    lan_capacity: Array
    lan_usable: Array
    egress: Array  # $ per byte crossing the WAN
    net: Index  # which distinct WAN round-trip distribution the site has (by p50, p99)
    nets: list[Link]  # one representative link per distinct WAN distribution


@dataclass(frozen=True)
class FeatureColumns:
    """Per feature: traffic, budget and rules; `site_*` lists the sites it runs at (CSR)."""

    rate: Array  # requests per device
    peak_factor: Array
    n_bytes: Array  # payload + result: one request across a link and back
    wan_framing: Array  # bytes a request adds across the WAN when in the cloud (mqtt; else 0)
    upstream_rate: Array  # events per device while running locally (0 if none)
    upstream_size: Array
    has_upstream: Mask
    deadline: Array
    q: Array  # the percentile as a fraction
    reach: Index  # rank of how far raw data may travel
    offline: Mask
    global_scope: Mask
    min_accuracy: Array  # nan when not required
    device_class: Index  # into `classes`
    site_ptr: Index  # feature i runs at site_idx[site_ptr[i]:site_ptr[i + 1]]
    site_idx: Index  # only sites with devices of the feature's class, in spec order
    site_devices: Array  # devices of the feature's class at each of those sites

    @property
    def n_sites(self) -> Index:
        return np.diff(self.site_ptr)


def device_classes(spec: Spec) -> list[str]:
    """Every device class name the spec uses; 'device' (the default class) first."""
    names = ["device", *spec.tiers.device_classes]
    for site in spec.sites:
        names += [n for n in site.counts if n not in names]
    names += [f.device_class for f in spec.features if f.device_class not in names]
    return list(dict.fromkeys(names))


def site_columns(spec: Spec, classes: list[str]) -> SiteColumns:
    sites = spec.sites
    wans = [spec.wan(s) for s in sites]
    lan = spec.links.device_edge
    nets: dict[tuple[float, float], int] = {}
    for link in wans:
        nets.setdefault((link.rtt_p50, link.rtt_p99), len(nets))
    representative: dict[int, Link] = {}
    for link in wans:
        representative.setdefault(nets[(link.rtt_p50, link.rtt_p99)], link)
    gateways = np.array([s.gateways for s in sites], dtype=np.float64)
    wan_capacity = np.array([spec.capacity(w, s) for w, s in zip(wans, sites, strict=True)])
    lan_capacity = np.array([spec.capacity(lan, s) for s in sites], dtype=np.float64)
    return SiteColumns(
        names=[s.name for s in sites],
        gateways=gateways,
        edge_servers=gateways * spec.tiers.edge.workers,
        devices=np.array(
            [[s.counts.get(c, 0) for c in classes] for s in sites], dtype=np.float64
        ).reshape(len(sites), len(classes)),
        wan=wans,
        wan_capacity=wan_capacity,
        wan_usable=wan_capacity * np.array([w.max_utilization for w in wans]),
        lan_capacity=lan_capacity,
        lan_usable=lan_capacity * lan.max_utilization,
        egress=np.array([w.egress for w in wans], dtype=np.float64),
        net=np.array([nets[(w.rtt_p50, w.rtt_p99)] for w in wans], dtype=np.int64),
        nets=[representative[i] for i in range(len(nets))],
    )


def feature_columns(spec: Spec, classes: list[str], sites: SiteColumns) -> FeatureColumns:
    features = spec.features
    n = len(features)

    def col(values: Iterable[float]) -> Array:
        out: Array = np.fromiter(values, dtype=np.float64, count=n)
        return out

    class_index = {c: i for i, c in enumerate(classes)}
    device_class = np.array([class_index[f.device_class] for f in features], dtype=np.int64)
    index = spec.site_index
    every = list(range(len(spec.sites)))
    lists = [every if f.sites is None else [index[s] for s in f.sites] for f in features]
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=n)
    flat = np.fromiter(
        (s for sites_of in lists for s in sites_of), dtype=np.int64, count=int(counts.sum())
    )
    owner = np.repeat(np.arange(n), counts)
    devices = sites.devices[flat, device_class[owner]] if n else np.zeros(0)
    present = devices > 0  # a site without devices of the class does not run the feature
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner[present], minlength=n), out=ptr[1:])
    return FeatureColumns(
        rate=col(f.rate for f in features),
        peak_factor=col(f.peak_factor for f in features),
        n_bytes=col(f.payload + f.result for f in features),
        wan_framing=col(_framing(f, spec) for f in features),
        upstream_rate=col(f.upstream.rate if f.upstream else 0.0 for f in features),
        upstream_size=col(f.upstream.size if f.upstream else 0.0 for f in features),
        has_upstream=np.array([f.upstream is not None for f in features], dtype=bool),
        deadline=col(f.deadline for f in features),
        q=col(f.percentile / 100 for f in features),
        reach=np.array([f.raw_data_may_reach.rank for f in features], dtype=np.int64),
        offline=np.array([f.offline for f in features], dtype=bool),
        global_scope=np.array([f.scope == "global" for f in features], dtype=bool),
        min_accuracy=col(np.nan if f.min_accuracy is None else f.min_accuracy for f in features),
        device_class=device_class,
        site_ptr=ptr,
        site_idx=flat[present],
        site_devices=devices[present],
    )


def segments(starts: Index, lengths: Index) -> tuple[Index, Index]:
    """Concatenated ranges [start, start + length): the positions, and which range each is."""
    owner = np.repeat(np.arange(len(starts)), lengths)
    if owner.size == 0:
        return np.zeros(0, dtype=np.int64), owner
    offsets = np.zeros(len(starts), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return starts[owner] + np.arange(owner.size) - offsets[owner], owner


def _framing(feature: Feature, spec: Spec) -> float:
    """MQTT's framing bytes of one exchange (at the feature's longest-named site), 0 for http."""
    if feature.protocol != "mqtt":
        return 0.0
    names = feature.sites or [s.name for s in spec.sites]
    site_chars = max(map(len, names))
    overhead = mqtt_exchange_overhead(
        site_chars, len(feature.name), feature.payload, feature.result
    )
    return float(overhead)
