"""From a finished run's counters to the figures people read: per feature, site and time."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from tierwise.rules import egress_cost, prorated
from tierwise.rules._types import FloatArray
from tierwise.rules.cost import SECONDS_PER_MONTH
from tierwise.simulate.histogram import N_COARSE, Histogram, coarse_uppers
from tierwise.simulate.result import FeatureStats, Series, SiteStats, StrategyRun
from tierwise.spec.tiers import Placement

if TYPE_CHECKING:
    from tierwise.simulate.engine import Simulation


def summarize(sim: Simulation) -> StrategyRun:
    spec = sim.spec
    months = sim.duration / SECONDS_PER_MONTH
    features = [_feature_stats(sim, f, months) for f in range(len(spec.features))]
    sites = [_site_stats(sim, i) for i in range(len(spec.sites))]
    breakdown, per_step = _costs(sim)
    cost = float(sum(breakdown.values()))
    return StrategyRun(
        strategy=sim.name,
        features=features,
        sites=sites,
        cost=cost,
        cost_per_month=cost / months,
        cost_breakdown=breakdown,
        cloud_peak_instances=sim.pool.peak,
        cloud_instance_hours=sim.pool.instance_seconds / 3600,
        requests=sum(a.requests for a in sim.acc),
        series=_series(sim, per_step),
        histograms={spec.features[f].name: h for f, h in enumerate(sim.f_hist)},
    )


def _feature_stats(sim: Simulation, f: int, months: float) -> FeatureStats:
    spec = sim.spec
    feature = spec.features[f]
    cand = sim.choice[f]
    mine = [(i, s) for i, s in enumerate(sim.streams) if s.feature == f]
    total = Histogram()
    worst, worst_site = float("nan"), ""
    for i, s in mine:
        total.counts += sim.acc[i].hist.counts
        value = sim.acc[i].hist.percentile(feature.percentile)
        if math.isnan(worst) or value > worst:
            worst, worst_site = value, spec.sites[s.site].name
    accs = [sim.acc[i] for i, _ in mine]
    upstream = sum(a.wan_bytes + a.telemetry_bytes for a in accs)
    egress = sum(
        (sim.acc[i].wan_bytes + sim.acc[i].telemetry_bytes) * spec.wan(spec.sites[s.site]).egress
        for i, s in mine
    )
    cost = float(
        sim.pricing.usage(sum(a.cloud_calls for a in accs), sum(a.cloud_busy for a in accs))
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
        upstream_bps=8 * upstream / sim.duration,
        cost=cost,
        cost_per_month=cost / months,
    )


def _site_stats(sim: Simulation, i: int) -> SiteStats:
    site = sim.spec.sites[i]
    return SiteStats(
        site=site.name,
        wan_down_seconds=sim.outages.wan[i].down_in(0.0, sim.duration),
        lan_down_seconds=sim.outages.lan[i].down_in(0.0, sim.duration),
        outbox_peak_bytes=float(sim.outboxes.depth_at[i].max(initial=0.0)),
        outbox_sent_bytes=float(sim.outboxes.sent[i].sum()),
        outbox_dropped_bytes=float(sim.outboxes.dropped[i].sum()),
        outbox_max_delay=sim.outboxes.max_delay(i),
    )


def _costs(sim: Simulation) -> tuple[dict[str, float], FloatArray]:
    """$ in this run by kind, and $ per control step (for the cost-over-time plot)."""
    spec = sim.spec
    compute = np.asarray(sim.pricing.usage(sim.cloud_calls, sim.cloud_work))
    compute = compute + sim.pricing.fixed(sim.step)
    price = np.array([spec.wan(site).egress for site in spec.sites])
    egress = np.asarray(egress_cost(sim.egress_bytes, price[:, None])).sum(axis=0)
    edge_sites = {s.site for s in sim.streams if s.placement in (Placement.EDGE, Placement.CASCADE)}
    gateways = sum(spec.tiers.edge.cost * spec.sites[i].gateways for i in edge_sites)
    device_fee = 0.0
    seen: set[tuple[int, str]] = set()
    for s in sim.streams:
        if s.placement is Placement.DEVICE:
            cls = spec.features[s.feature].device_class
            if (s.site, cls) not in seen:
                seen.add((s.site, cls))
                device_fee += spec.tiers.device_class(cls).cost * s.devices
    fixed = float(prorated(gateways + device_fee, sim.step))
    per_step = compute + egress + fixed
    breakdown = {
        "cloud compute": float(compute.sum()),
        "data transfer": float(egress.sum()),
        "edge gateways": float(prorated(gateways, sim.n_steps * sim.step)),
        "device upgrades": float(prorated(device_fee, sim.n_steps * sim.step)),
    }
    return breakdown, per_step


def _series(sim: Simulation, cost_per_step: FloatArray) -> Series:
    bins = sim.bins
    which = np.minimum(np.arange(sim.n_steps) * bins // sim.n_steps, bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.float64)
    edges_t = np.linspace(0.0, sim.duration, bins + 1)
    step_edges = np.arange(sim.n_steps + 1) * sim.step
    down = np.zeros((len(sim.spec.sites), bins))
    outbox = np.zeros((len(sim.spec.sites), bins))
    for site in range(len(sim.spec.sites)):
        per_step = np.diff(sim.outages.wan[site].downtime_until(step_edges)) / sim.step
        down[site] = np.bincount(which, weights=per_step, minlength=bins) / np.maximum(counts, 1)
        np.maximum.at(outbox[site], which, sim.outboxes.depth_at[site])
    p99 = np.full((len(sim.spec.features), bins), np.nan)
    uppers = coarse_uppers()
    for f in range(len(sim.spec.features)):
        hist = sim.s_hist[f]
        totals = hist.sum(axis=1)
        cum = np.cumsum(hist, axis=1)
        rank = np.ceil(0.99 * totals)
        has = totals > 0
        idx = (cum < rank[:, None]).sum(axis=1)
        p99[f, has] = uppers[np.minimum(idx[has], N_COARSE - 1)]
    return Series(
        edges=edges_t,
        requests=sim.s_requests,
        misses=sim.s_misses,
        p99=p99,
        cost=np.bincount(which, weights=cost_per_step, minlength=bins).astype(np.float64),
        outbox=outbox,
        wan_down=down,
        instances=np.bincount(which, weights=sim.instances, minlength=bins) / np.maximum(counts, 1),
    )
