"""From a run's `Tally` (tally.py) to the figures people read: per feature, site and time."""

from __future__ import annotations

import math

import numpy as np

from tierwise.rules import egress_cost, prorated
from tierwise.rules._types import FloatArray
from tierwise.rules.cost import SECONDS_PER_MONTH
from tierwise.simulate.histogram import N_COARSE, Histogram, coarse_uppers
from tierwise.simulate.result import FeatureStats, Series, SiteStats, StrategyRun
from tierwise.simulate.tally import Tally
from tierwise.spec.tiers import Placement


def summarize(tally: Tally) -> StrategyRun:
    spec = tally.spec
    months = tally.duration / SECONDS_PER_MONTH
    features = [_feature_stats(tally, f, months) for f in range(len(spec.features))]
    sites = [_site_stats(tally, i) for i in range(len(spec.sites))]
    breakdown, per_step = _costs(tally)
    cost = float(sum(breakdown.values()))
    return StrategyRun(
        strategy=tally.name,
        features=features,
        sites=sites,
        cost=cost,
        cost_per_month=cost / months,
        cost_breakdown=breakdown,
        cloud_peak_instances=tally.cloud_peak_instances,
        cloud_instance_hours=tally.cloud_instance_seconds / 3600,
        requests=sum(a.requests for a in tally.per_stream),
        series=_series(tally, per_step),
        histograms={spec.features[f].name: h for f, h in enumerate(tally.feature_hist)},
    )


def _feature_stats(tally: Tally, f: int, months: float) -> FeatureStats:
    spec = tally.spec
    feature = spec.features[f]
    cand = tally.choice[f]
    per_stream = tally.per_stream
    mine = [(i, s) for i, s in enumerate(tally.streams) if s.feature == f]
    total = Histogram()
    worst, worst_site = float("nan"), ""
    for i, s in mine:
        total.counts += per_stream[i].hist.counts
        value = per_stream[i].hist.percentile(feature.percentile)
        if math.isnan(worst) or value > worst:
            worst, worst_site = value, spec.sites[s.site].name
    accs = [per_stream[i] for i, _ in mine]
    upstream = sum(a.wan_bytes + a.telemetry_bytes for a in accs)
    egress = sum(
        (per_stream[i].wan_bytes + per_stream[i].telemetry_bytes)
        * spec.wan(spec.sites[s.site]).egress
        for i, s in mine
    )
    cost = float(
        tally.pricing.usage(sum(a.cloud_calls for a in accs), sum(a.cloud_busy for a in accs))
        + egress
    )
    requests = sum(a.requests for a in accs)
    answered = sum(a.answered for a in accs)
    return FeatureStats(
        feature=feature.name,
        placement=cand.placement.value,
        label=cand.label,
        deadline=feature.deadline,
        percentile=feature.percentile,
        requests=requests,
        answered=answered,
        late=sum(a.late for a in accs),
        failed=requests - answered,
        p50=total.percentile(50),
        p90=total.percentile(90),
        p99=total.percentile(99),
        latency=worst,
        latency_site=worst_site,
        escalated=sum(a.escalated for a in accs),
        escalated_in_time=sum(a.in_time for a in accs),
        upstream_bytes=upstream,
        upstream_bps=8 * upstream / tally.duration,
        cost=cost,
        cost_per_month=cost / months,
    )


def _site_stats(tally: Tally, i: int) -> SiteStats:
    site = tally.spec.sites[i]
    return SiteStats(
        site=site.name,
        wan_down_seconds=tally.outages.wan[i].down_in(0.0, tally.duration),
        lan_down_seconds=tally.outages.lan[i].down_in(0.0, tally.duration),
        outbox_peak_bytes=float(tally.outboxes.depth_at[i].max(initial=0.0)),
        outbox_sent_bytes=float(tally.outboxes.sent[i].sum()),
        outbox_dropped_bytes=float(tally.outboxes.dropped[i].sum()),
        outbox_max_delay=tally.outboxes.max_delay(i),
    )


def _costs(tally: Tally) -> tuple[dict[str, float], FloatArray]:
    """$ in this run by kind, and $ per control step (for the cost-over-time plot)."""
    spec = tally.spec
    compute = np.asarray(tally.pricing.usage(tally.cloud_calls, tally.cloud_work))
    compute = compute + tally.pricing.fixed(tally.step)
    price = np.array([spec.wan(site).egress for site in spec.sites])
    egress = np.asarray(egress_cost(tally.egress_bytes, price[:, None])).sum(axis=0)
    edge_sites = {
        s.site for s in tally.streams if s.placement in (Placement.EDGE, Placement.CASCADE)
    }
    gateways = sum(spec.tiers.edge.cost * spec.sites[i].gateways for i in edge_sites)
    device_fee = 0.0
    seen: set[tuple[int, str]] = set()
    for s in tally.streams:
        if s.placement is Placement.DEVICE:
            cls = spec.features[s.feature].device_class
            if (s.site, cls) not in seen:
                seen.add((s.site, cls))
                device_fee += spec.tiers.device_class(cls).cost * s.devices
    fixed = float(prorated(gateways + device_fee, tally.step))
    per_step = compute + egress + fixed
    breakdown = {
        "cloud compute": float(compute.sum()),
        "data transfer": float(egress.sum()),
        "edge gateways": float(prorated(gateways, tally.n_steps * tally.step)),
        "device upgrades": float(prorated(device_fee, tally.n_steps * tally.step)),
    }
    return breakdown, per_step


def _series(tally: Tally, cost_per_step: FloatArray) -> Series:
    bins = tally.bins
    which = np.minimum(np.arange(tally.n_steps) * bins // tally.n_steps, bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.float64)
    edges_t = np.linspace(0.0, tally.duration, bins + 1)
    step_edges = np.arange(tally.n_steps + 1) * tally.step
    down = np.zeros((len(tally.spec.sites), bins))
    outbox = np.zeros((len(tally.spec.sites), bins))
    for site in range(len(tally.spec.sites)):
        per_step = np.diff(tally.outages.wan[site].downtime_until(step_edges)) / tally.step
        down[site] = np.bincount(which, weights=per_step, minlength=bins) / np.maximum(counts, 1)
        np.maximum.at(outbox[site], which, tally.outboxes.depth_at[site])
    p99 = np.full((len(tally.spec.features), bins), np.nan)
    uppers = coarse_uppers()
    for f in range(len(tally.spec.features)):
        hist = tally.series_hist[f]
        totals = hist.sum(axis=1)
        cum = np.cumsum(hist, axis=1)
        rank = np.ceil(0.99 * totals)
        has = totals > 0
        idx = (cum < rank[:, None]).sum(axis=1)
        p99[f, has] = uppers[np.minimum(idx[has], N_COARSE - 1)]
    return Series(
        edges=edges_t,
        requests=tally.series_requests,
        misses=tally.series_misses,
        p99=p99,
        cost=np.bincount(which, weights=cost_per_step, minlength=bins).astype(np.float64),
        outbox=outbox,
        wan_down=down,
        instances=np.bincount(which, weights=tally.instances, minlength=bins)
        / np.maximum(counts, 1),
    )
