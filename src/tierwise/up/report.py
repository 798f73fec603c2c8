"""run.json and the plan-vs-measured table: each measured number next to the plan's prediction.

The prediction is the plan's own model (`tierwise.plan.evaluate`) applied to the placement
that was run, under the WAN this run injected (`wan_schedule.run_spec`: its RTT, loss and
outage share) — and, for reference, under the spec's WAN as written. Counts (misses,
upstream bytes) are predicted per request and multiplied by the requests the devices
actually sent, so scaling the traffic down does not distort them.

Measured:
- latency at the feature's percentile: on the devices, from sending to the answer, worst site;
- escalation rate: share of answers the plan wanted from the cloud (a hard row of a cascade,
  a cloud feature) — `sent` says how many actually went there, the rest were kept local
  because the WAN was down or too slow for the deadline;
- deadline misses: answers after the deadline, plus requests never answered;
- upstream bytes: every byte the site's WAN proxy carried from edge to cloud (escalations,
  telemetry, status reports, deployment polls).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from tierwise.plan.evaluate import FeatureOutcome, Outcome
from tierwise.spec.units import fmt_share, fmt_size
from tierwise.up.layout import FeatureRun


@dataclass
class SiteResult:
    """What one site's components reported at the end of the run."""

    devices: dict[str, Any]  # the device process's summary
    wan: dict[str, Any] = field(default_factory=dict)  # the proxy's stats (bytes_up, ...)
    agent: dict[str, Any] = field(default_factory=dict)  # the agent's last /v1/state
    delivered: dict[str, dict[str, int]] = field(default_factory=dict)  # cloud: per stream
    drift: list[dict[str, Any]] = field(default_factory=list)  # cloud: verdicts of this site


def build_report(
    header: dict[str, Any],
    runs: list[FeatureRun],
    predicted: Outcome | None,
    sites: dict[str, SiteResult],
) -> dict[str, Any]:
    """The run.json document."""
    features = [
        _feature(run, predicted.features[i] if predicted else None, sites)
        for i, run in enumerate(runs)
    ]
    site_rows = {name: _site(name, runs, predicted, result) for name, result in sites.items()}
    requests = sum(f["requests"] for f in features)
    totals = {
        "requests": requests,
        "deadline_misses": {
            "plan": _sum(f["deadline_misses"]["plan"] for f in features),
            "measured": sum(f["deadline_misses"]["measured"] for f in features),
        },
        "upstream_bytes": {
            "plan": _sum(s["upstream_bytes"]["plan"] for s in site_rows.values()),
            "measured": _sum(s["upstream_bytes"]["measured"] for s in site_rows.values()),
        },
        "acked_events": sum(s["events"]["acked"] for s in site_rows.values()),
        "delivered_events": sum(s["events"]["delivered"] for s in site_rows.values()),
        "lost_events": sum(s["events"]["lost"] for s in site_rows.values()),
        # $/month of the strategy at the spec's full rates, by the plan's model for this run
        "plan_cost_per_month": predicted.cost_breakdown if predicted else None,
    }
    report = {**header, "features": features, "sites": site_rows, "totals": totals}
    report["drift"] = [v for result in sites.values() for v in result.drift]
    if header.get("shift") is not None:
        from tierwise.up.shift_report import shift_section

        report["shift"] = shift_section(header["shift"], sites, header.get("learning"))
    return report


def _feature(
    run: FeatureRun, predicted: FeatureOutcome | None, sites: dict[str, SiteResult]
) -> dict[str, Any]:
    per_site = {
        name: result.devices["features"][run.name]
        for name, result in sites.items()
        if run.name in result.devices.get("features", {})
    }
    answered = sum(s["answered"] for s in per_site.values())
    sent = sum(s["sent"] for s in per_site.values())
    misses = sum(s["misses"] for s in per_site.values())
    wanted = sum(s["wanted_cloud"] for s in per_site.values())
    to_cloud = sum(s["sent_to_cloud"] for s in per_site.values())
    labelled = sum(s["labelled"] for s in per_site.values())
    correct = sum(s["correct"] for s in per_site.values())
    at_pct = [s["latency_at_percentile_ms"] for s in per_site.values()]
    measured_latency = max((v for v in at_pct if v is not None), default=None)
    plan_latency = _ms(predicted.latency) if predicted else None
    written = run.outcome
    return {
        "feature": run.name,
        "placement": run.mode,
        "plan_label": written.label,
        "deadline_ms": run.feature.deadline * 1000,
        "percentile": run.feature.percentile,
        "requests": sent,
        "answered": answered,
        "latency_ms": {
            "plan": plan_latency,
            "plan_spec_wan": _ms(written.latency),
            "measured": measured_latency,
            "measured_by_site": {k: v["latency_ms"] for k, v in per_site.items()},
        },
        "escalation_rate": {
            "plan": run.escalated,
            "measured": wanted / answered if answered else None,
            "sent_to_cloud": to_cloud / answered if answered else None,
        },
        "deadline_misses": {
            "plan": predicted.p_miss * sent if predicted else None,
            "plan_share": predicted.p_miss if predicted else None,
            "plan_share_spec_wan": written.p_miss,
            "measured": misses,
            "measured_share": misses / sent if sent else None,
        },
        "accuracy": {
            "plan": predicted.accuracy if predicted else written.accuracy,
            "measured": correct / labelled if labelled else None,
            "labelled": labelled,
        },
        "answered_by": _merge(s["answered_by"] for s in per_site.values()),
        "reasons": _merge(s["reasons"] for s in per_site.values()),
        "failed": _merge(s["failed"] for s in per_site.values()),
        "unfinished": sum(s["unfinished"] for s in per_site.values()),
    }


def _site(
    name: str, runs: list[FeatureRun], predicted: Outcome | None, result: SiteResult
) -> dict[str, Any]:
    plan_bytes: float | None = 0.0
    for i, run in enumerate(runs):
        stats = result.devices.get("features", {}).get(run.name)
        if stats is None or predicted is None or run.total_rate <= 0:
            continue
        per_request = predicted.features[i].upstream_bps / 8 / run.total_rate
        assert plan_bytes is not None
        plan_bytes += per_request * stats["sent"]
    if predicted is None:
        plan_bytes = None
    acked_streams: dict[str, int] = {}
    for stats in result.devices.get("features", {}).values():
        acked_streams |= stats.get("acked_by_stream", {})
    delivered = sum(
        min(result.delivered.get(s, {}).get("events", 0), n) for s, n in acked_streams.items()
    )
    acked = sum(acked_streams.values())
    outbox = result.agent.get("outbox") or {}
    return {
        "upstream_bytes": {"plan": plan_bytes, "measured": result.wan.get("bytes_up")},
        "downstream_bytes": result.wan.get("bytes_down"),
        "wan": {k: v for k, v in result.wan.items() if k not in ("bytes_up", "bytes_down")},
        "events": {
            "acked": acked,
            "delivered": delivered,
            "lost": acked - delivered,
            "outbox_left": outbox.get("depth_events"),
            "outbox_dropped": outbox.get("dropped_events"),
        },
        "uploads": result.agent.get("uploads"),
        # the agent's upstream byte counters of the feedback path, per feature
        "learning": result.agent.get("learning"),
        # what the agent served at the end, per feature (a retrained model shows here)
        "served": {
            name: {
                "package": f.get("package"),
                "version": f.get("version"),
                "variant": f.get("variant"),
            }
            for name, f in (result.agent.get("features") or {}).items()
        },
        "timeline": result.devices.get("timeline", []),
    }


def render_table(report: dict[str, Any], console: Console) -> None:
    """The plan-vs-measured table, one block of rows per feature, totals at the end."""
    title = (
        f"plan vs measured — {report['spec']} ({report['strategy']}), "
        f"{report['duration_s']:g} s at scale {report['scale']['factor']:.3g}, "
        f"WAN {report['wan']['schedule']}"
        + (", devices over MQTT" if report.get("protocol") == "mqtt" else "")
    )
    table = Table(title=title, title_justify="left")
    table.add_column("feature")
    table.add_column("figure")
    table.add_column("plan", justify="right")
    table.add_column("measured", justify="right")
    for f in report["features"]:
        pct = f"p{f['percentile']:g}"
        lat = f["latency_ms"]
        table.add_row(
            f"{f['feature']}\n[dim]{f['placement']}, {f['requests']:,} requests[/dim]",
            f"{pct} latency (budget {_fmt_ms(f['deadline_ms'])})",
            _fmt_ms(lat["plan"]),
            _fmt_ms(lat["measured"]),
        )
        esc = f["escalation_rate"]
        sent = esc["sent_to_cloud"]
        table.add_row(
            "",
            "escalation rate",
            fmt_share(esc["plan"]),
            fmt_share(esc["measured"]) + (f" [dim](sent {fmt_share(sent)})[/dim]" if sent else ""),
        )
        miss = f["deadline_misses"]
        table.add_row(
            "",
            "deadline misses",
            _count(miss["plan"], miss["plan_share"]),
            _count(miss["measured"], miss["measured_share"]),
            end_section=True,
        )
    t = report["totals"]
    up = t["upstream_bytes"]
    table.add_row("all sites", "upstream bytes", _bytes(up["plan"]), _bytes(up["measured"]))
    misses = t["deadline_misses"]
    table.add_row(
        "",
        "deadline misses",
        _count(misses["plan"], None),
        _count(misses["measured"], None),
    )
    console.print(table)
    if report.get("shift") is not None:
        from tierwise.up.shift_report import render_shift

        render_shift(report["shift"], console)


def _merge(dicts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def _sum(values: Any) -> float | None:
    vals = list(values)
    return None if any(v is None for v in vals) else float(sum(vals))


def _ms(seconds: float) -> float | None:
    return None if seconds == float("inf") else seconds * 1000


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 60_000:
        return f"{value / 60_000:,.1f}min"
    if value >= 10_000:
        return f"{value / 1000:,.1f}s"
    return f"{value:,.1f}ms"


def _count(value: float | None, share: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"
    return text + (f" ({share:.2%})" if share is not None else "")


def _bytes(value: float | None) -> str:
    return "-" if value is None else fmt_size(value)
