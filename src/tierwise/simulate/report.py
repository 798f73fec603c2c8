"""The simulation as a person reads it in a terminal: per feature, per strategy, per site."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tierwise.plan.planner import PlanResult
from tierwise.simulate.result import FeatureStats, SimResult
from tierwise.simulate.run import PLAN_STRATEGY
from tierwise.spec.units import fmt_bandwidth, fmt_duration, fmt_money, fmt_size


def render(result: SimResult, planned: PlanResult, console: Console) -> None:
    console.print(
        f"[bold]tierwise simulate[/bold] — {result.spec}: {fmt_duration(result.duration)} "
        f"simulated, seed {result.seed}, {result.requests:,} requests in "
        f"{result.wall_seconds:.1f} s ({result.requests_per_second / 1e6:.2f} M requests/s)"
    )
    for name, run in result.runs.items():
        planned_outcome = planned.strategies[PLAN_STRATEGY[name]]
        table = Table(
            title=f"{name}: per feature (plan's prediction in brackets)", title_justify="left"
        )
        for col, justify in (
            ("feature", "left"),
            ("placement", "left"),
            ("latency / budget", "right"),
            ("p50 / p99", "right"),
            ("misses", "right"),
            ("availability", "right"),
            ("escalated", "right"),
            ("upstream", "right"),
            ("$/month", "right"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for f, p in zip(run.features, planned_outcome.features, strict=True):
            table.add_row(
                Text(f.feature, style="bold"),
                f.label,
                _latency(f, p.latency),
                f"{_dur(f.p50)} / {_dur(f.p99)}",
                f"{f.misses:,} ({f.p_miss:.3%})",
                f"{f.availability:.3%}",
                f"{f.escalation_rate:.1%} [{p.escalation_rate:.0%}]",
                f"{fmt_bandwidth(f.upstream_bps)} [{fmt_bandwidth(p.upstream_bps)}]",
                f"{fmt_money(f.cost_per_month)} [{fmt_money(p.cost)}]",
            )
        console.print(table)
        sites = Table(title=f"{name}: per site", title_justify="left")
        for col in ("site", "WAN down", "LAN down", "outbox peak", "sent", "dropped", "max delay"):
            sites.add_column(col, justify="left" if col == "site" else "right")
        for s in run.sites:
            sites.add_row(
                s.site,
                fmt_duration(s.wan_down_seconds),
                fmt_duration(s.lan_down_seconds),
                fmt_size(s.outbox_peak_bytes),
                fmt_size(s.outbox_sent_bytes),
                Text(
                    fmt_size(s.outbox_dropped_bytes),
                    style="bold red" if s.outbox_dropped_bytes else "",
                ),
                fmt_duration(s.outbox_max_delay),
            )
        console.print(sites)
        console.print(
            f"  cost: {fmt_money(run.cost)} in this run = {fmt_money(run.cost_per_month)}/month "
            f"[plan: {fmt_money(planned_outcome.cost)}/month]; cloud instances: peak "
            f"{run.cloud_peak_instances}, {run.cloud_instance_hours:.1f} instance-hours"
        )
        console.print()


def _dur(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else fmt_duration(seconds)


def _latency(f: FeatureStats, planned: float) -> Text:
    pct = f"p{f.percentile:g}"
    if f.answered == 0:
        return Text(f"{pct} n/a (no answer) [{_dur(planned)}]", style="dim")
    style = "green" if f.latency <= f.deadline else "bold red"
    shown = "inf" if not math.isfinite(planned) else _dur(planned)
    return Text(f"{pct} {_dur(f.latency)} / {_dur(f.deadline)} [{shown}]", style=style)
