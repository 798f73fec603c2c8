"""A self-contained HTML report: tables plus two SVG charts, no JavaScript, no dependencies.

Charts: latency vs budget per feature and strategy (log scale, budget marked), and the monthly
cost of each strategy broken down by what it pays for.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from tierwise.plan.planner import PlanResult
from tierwise.plan.report import STRATEGY_ORDER, misses_text
from tierwise.spec.units import fmt_bandwidth, fmt_duration, fmt_money

COLORS = {"cloud-only": "#7aa6d8", "edge-only": "#e0a458", "tierwise": "#4c9f70"}
COST_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#9c755f"]


def write_html(result: PlanResult, path: Path) -> None:
    path.write_text(render_html(result), encoding="utf-8")


def render_html(result: PlanResult) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>tierwise plan — {escape(result.spec)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:4px 8px;"
        "text-align:left;vertical-align:top}th{background:#f4f4f4}.bad{color:#b00020}"
        ".ok{color:#2e7d32}svg{background:#fff}</style></head><body>",
        f"<h1>tierwise plan — {escape(result.spec)}</h1>",
        "<h2>Placement</h2>",
        _placement_table(result),
        "<h2>Latency vs budget</h2>",
        latency_chart(result),
        "<h2>Monthly cost by strategy</h2>",
        cost_chart(result),
        "<h2>Strategies side by side</h2>",
        _strategy_table(result),
    ]
    if result.training:
        parts += ["<h2>Training</h2>", _training_table(result)]
    parts += ["<h2>Rejected alternatives</h2>", _alternatives_table(result), "</body></html>"]
    return "\n".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _latency_cell(latency: float, deadline: float, ok: bool) -> str:
    text = "overloaded" if not math.isfinite(latency) else fmt_duration(latency)
    return f"<span class='{'ok' if ok else 'bad'}'>{escape(text)}</span> / {fmt_duration(deadline)}"


def _placement_table(result: PlanResult) -> str:
    rows = []
    for d in result.decisions:
        o = d.outcome
        rows.append(
            [
                escape(o.feature),
                escape(o.label),
                f"p{o.percentile:g} " + _latency_cell(o.latency, o.deadline, o.meets_deadline),
                misses_text(o.misses_per_month, o.p_miss),
                fmt_bandwidth(o.upstream_bps),
                fmt_money(o.cost),
                f"{o.accuracy:.1%}" if o.accuracy is not None else "-",
                escape(d.reason),
            ]
        )
    header = ["feature", "placement", "latency", "misses/month", "upstream", "$/month"]
    return _table([*header, "accuracy", "why"], rows)


def _strategy_table(result: PlanResult) -> str:
    strategies = [result.strategies[k] for k in STRATEGY_ORDER]
    rows = []
    for i, d in enumerate(result.decisions):
        rows.append(
            [f"{escape(d.outcome.feature)} p{d.outcome.percentile:g}"]
            + [
                _latency_cell(
                    s.features[i].latency, s.features[i].deadline, s.features[i].meets_deadline
                )
                for s in strategies
            ]
        )
    rows.append(["deadline misses/month", *[misses_text(s.misses_per_month) for s in strategies]])
    rows.append(["upstream (mean)", *[fmt_bandwidth(s.upstream_bps) for s in strategies]])
    rows.append(["cost/month", *[fmt_money(s.cost) for s in strategies]])
    rows.append(["offline coverage", *[f"{s.offline_coverage:.0%}" for s in strategies]])
    rows.append(["privacy violations", *[str(s.privacy_violations) for s in strategies]])
    return _table(["", *[s.name for s in strategies]], rows)


def _training_table(result: PlanResult) -> str:
    rows = [[escape(t.job), t.mode, escape(t.reason)] for t in result.training]
    return _table(["job", "mode", "why"], rows)


def _alternatives_table(result: PlanResult) -> str:
    rows = [
        [escape(d.outcome.feature), escape(a.label), escape(a.ruled_out_by.replace(" | ", "; "))]
        for d in result.decisions
        for a in d.alternatives
    ]
    return _table(["feature", "alternative", "ruled out by"], rows)


def latency_chart(result: PlanResult) -> str:
    """Horizontal bars on a log axis: one group per feature, one bar per strategy."""
    names = list(STRATEGY_ORDER)
    features = result.decisions
    values = [
        [result.strategies[n].features[i].latency for n in names] for i in range(len(features))
    ]
    finite = [v for row in values for v in row if math.isfinite(v) and v > 0]
    finite += [d.outcome.deadline for d in features]
    lo = 10 ** math.floor(math.log10(min(finite)))
    hi = 10 ** math.ceil(math.log10(max(finite) * 1.5))
    left, width, bar, gap = 190, 560, 12, 14
    height = 40 + len(features) * (len(names) * bar + gap) + 30

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return left + width * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = [
        f"<svg width='{left + width + 170}' height='{height}' xmlns='http://www.w3.org/2000/svg' font-size='11'>"
    ]
    decade = lo
    while decade <= hi * 1.0001:
        out.append(
            f"<line x1='{x(decade):.1f}' y1='20' x2='{x(decade):.1f}' y2='{height - 25}' stroke='#eee'/>"
        )
        out.append(
            f"<text x='{x(decade):.1f}' y='{height - 10}' text-anchor='middle'>{fmt_duration(decade)}</text>"
        )
        decade *= 10
    y = 30.0
    for i, d in enumerate(features):
        out.append(
            f"<text x='{left - 8}' y='{y + bar * 1.8:.1f}' text-anchor='end'>{escape(d.outcome.feature)}</text>"
        )
        for j, name in enumerate(names):
            v = values[i][j]
            w = (x(v) if math.isfinite(v) else left + width) - left
            fill = COLORS[name] if math.isfinite(v) else "#b00020"
            out.append(
                f"<rect x='{left}' y='{y:.1f}' width='{max(w, 1):.1f}' height='{bar - 2}' fill='{fill}'><title>{escape(name)}: {escape(fmt_duration(v))}</title></rect>"
            )
            label = fmt_duration(v) if math.isfinite(v) else "overloaded"
            out.append(
                f"<text x='{left + w + 4:.1f}' y='{y + bar - 3:.1f}'>{escape(name)} {escape(label)}</text>"
            )
            y += bar
        bx = x(d.outcome.deadline)
        out.append(
            f"<line x1='{bx:.1f}' y1='{y - len(names) * bar - 2:.1f}' x2='{bx:.1f}' y2='{y + 2:.1f}' stroke='#b00020' stroke-width='2' stroke-dasharray='4 2'><title>budget {fmt_duration(d.outcome.deadline)}</title></line>"
        )
        y += gap
    out.append("</svg>")
    return "\n".join(out)


def cost_chart(result: PlanResult) -> str:
    """Stacked bars: what each strategy pays per month, by component."""
    names = list(STRATEGY_ORDER)
    parts = list(result.strategies["tierwise"].cost_breakdown)
    totals = [result.strategies[n].cost for n in names]
    top = max(max(totals), 1e-9)
    left, width, bar = 110, 520, 26
    height = 30 + len(names) * (bar + 12) + 40
    out = [
        f"<svg width='{left + width + 200}' height='{height}' xmlns='http://www.w3.org/2000/svg' font-size='11'>"
    ]
    y = 20.0
    for name, total in zip(names, totals, strict=True):
        out.append(
            f"<text x='{left - 8}' y='{y + bar * 0.65:.1f}' text-anchor='end'>{escape(name)}</text>"
        )
        x = float(left)
        for k, part in enumerate(parts):
            value = result.strategies[name].cost_breakdown.get(part, 0.0)
            w = width * value / top
            if w > 0:
                out.append(
                    f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{bar}' fill='{COST_COLORS[k % len(COST_COLORS)]}'><title>{escape(part)}: {fmt_money(value)}</title></rect>"
                )
            x += w
        out.append(f"<text x='{x + 6:.1f}' y='{y + bar * 0.65:.1f}'>{fmt_money(total)}</text>")
        y += bar + 12
    lx = float(left)
    for k, part in enumerate(parts):
        out.append(
            f"<rect x='{lx:.1f}' y='{y + 8:.1f}' width='10' height='10' fill='{COST_COLORS[k % len(COST_COLORS)]}'/>"
        )
        out.append(f"<text x='{lx + 14:.1f}' y='{y + 17:.1f}'>{escape(part)}</text>")
        lx += 14 + 7 * len(part) + 16
    out.append("</svg>")
    return "\n".join(out)
