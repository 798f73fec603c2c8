"""The plan as a person reads it in a terminal: placements, reasons, alternatives, strategies."""

from __future__ import annotations

import math

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tierwise.plan.evaluate import FeatureOutcome, Outcome
from tierwise.plan.planner import PlanResult
from tierwise.plan.solve import RELATIVE_GAP, SOLVE_TIME_LIMIT_S
from tierwise.spec.units import fmt_bandwidth, fmt_duration, fmt_money, fmt_size

STRATEGY_ORDER = ("cloud-only", "edge-only", "tierwise")
GAP_WORTH_SAYING = 1e-6  # below this the plan is the cheapest to the cent on any fleet


def render(result: PlanResult, console: Console, alternatives: bool = True) -> None:
    console.print(
        Panel.fit(
            f"[bold]tierwise plan[/bold] — {result.spec}: {len(result.decisions)} features, "
            f"{len(result.training)} training jobs  "
            f"[dim](planned in {result.seconds.get('total', 0) * 1000:.0f} ms)[/dim]"
        )
    )
    if result.optimality_gap > RELATIVE_GAP:
        console.print(
            f"[yellow]The solver stopped at its {SOLVE_TIME_LIMIT_S:g} s limit before proving "
            f"this plan the cheapest: it costs at most {result.optimality_gap:.2%} more than "
            "the cheapest one.[/yellow]"
        )
    elif result.optimality_gap > GAP_WORTH_SAYING:
        console.print(
            f"[dim]Proven within {result.optimality_gap:.3%} of the cheapest plan (the solver "
            f"stops within {RELATIVE_GAP:.1%}).[/dim]"
        )
    console.print(_placements(result))
    console.print(Text("Why", style="italic"))
    for d in result.decisions:
        console.print(Text.assemble("  ", (d.outcome.feature, "bold"), " → ", d.reason))
    console.print()
    if alternatives:
        console.print(_alternatives(result))
    if result.training:
        console.print(_training(result))
    console.print(_strategies(result))


def latency_text(o: FeatureOutcome) -> Text:
    if not math.isfinite(o.latency):
        return Text("overloaded", style="bold red")
    style = "green" if o.meets_deadline else "bold red"
    return Text(f"{fmt_duration(o.latency)} / {fmt_duration(o.deadline)}", style=style)


def misses_text(count: float, share: float | None = None) -> str:
    if count < 0.5:
        text = "0"
    elif count < 1e4:
        text = f"{count:,.0f}"
    else:
        text = f"{count:.2g}"
    return text if share is None else f"{text} ({share:.3%})"


def _placements(result: PlanResult) -> Table:
    table = Table(title="Placement", title_justify="left")
    table.add_column("feature", style="bold")
    table.add_column("placement")
    table.add_column("latency / budget", justify="right")
    table.add_column("misses/month", justify="right")
    table.add_column("upstream", justify="right")
    table.add_column("$/month", justify="right")
    table.add_column("accuracy", justify="right")
    for d in result.decisions:
        o = d.outcome
        table.add_row(
            o.feature,
            o.label,
            Text.assemble(f"p{o.percentile:g} ", latency_text(o)),
            misses_text(o.misses_per_month, o.p_miss),
            fmt_bandwidth(o.upstream_bps),
            fmt_money(o.cost),
            f"{o.accuracy:.1%}" if o.accuracy is not None else "-",
        )
    return table


def _alternatives(result: PlanResult) -> Table:
    table = Table(title="Rejected alternatives", title_justify="left", expand=True)
    table.add_column("feature", style="bold")
    table.add_column("alternative")
    table.add_column("ruled out by", ratio=2)
    for d in result.decisions:
        for i, a in enumerate(d.alternatives):
            style = "yellow" if a.extra_cost is not None else "red"
            table.add_row(
                d.outcome.feature if i == 0 else "",
                a.label,
                Text(a.ruled_out_by.replace(" | ", "; "), style=style),
            )
    return table


def _training(result: PlanResult) -> Table:
    table = Table(title="Training", title_justify="left", expand=True)
    table.add_column("job", style="bold")
    table.add_column("mode")
    table.add_column("WAN/month centralized", justify="right")
    table.add_column("WAN/month federated", justify="right")
    table.add_column("why")
    for t in result.training:
        table.add_row(
            t.job,
            t.mode,
            fmt_size(t.centralized_bytes_month),
            fmt_size(t.federated_bytes_month),
            t.reason.split(": ", 1)[-1],
        )
    return table


def _strategies(result: PlanResult) -> Group:
    strategies = [result.strategies[k] for k in STRATEGY_ORDER]
    table = Table(title="Three strategies side by side", title_justify="left", expand=True)
    table.add_column("", style="bold")
    for s in strategies:
        table.add_column(s.name, justify="right")
    for i, d in enumerate(result.decisions):
        row = [f"{d.outcome.feature} p{d.outcome.percentile:g}"]
        row += [latency_text(s.features[i]) for s in strategies]  # type: ignore[misc]
        table.add_row(*row)
    table.add_row(
        *_row("deadline misses/month", strategies, lambda s: misses_text(s.misses_per_month))
    )
    table.add_row(*_row("upstream (mean)", strategies, lambda s: fmt_bandwidth(s.upstream_bps)))
    table.add_row(*_row("cost/month", strategies, lambda s: fmt_money(s.cost)))
    table.add_row(*_row("offline coverage", strategies, lambda s: f"{s.offline_coverage:.0%}"))
    table.add_row(*_row("privacy violations", strategies, lambda s: str(s.privacy_violations)))
    plan, cloud = result.strategies["tierwise"], result.strategies["cloud-only"]
    summary = Text(
        f"tierwise vs cloud-only: {_ratio(cloud.cost, plan.cost)} cheaper, "
        f"{_ratio(cloud.upstream_bps, plan.upstream_bps)} less upstream traffic",
        style="dim",
    )
    return Group(table, summary)


def _row(name: str, strategies: list[Outcome], fn: object) -> list[str]:
    return [name, *[fn(s) for s in strategies]]  # type: ignore[operator]


def _ratio(a: float, b: float) -> str:
    if b <= 0:
        return "∞×" if a > 0 else "1×"
    return f"{a / b:.1f}×"
