"""A one-file HTML report of a simulation: tables per strategy, plots embedded as PNG."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from tierwise.plan.planner import PlanResult
from tierwise.simulate.result import SimResult
from tierwise.simulate.run import PLAN_STRATEGY
from tierwise.spec.units import fmt_bandwidth, fmt_duration, fmt_money, fmt_size

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f3f3f3}td.n{text-align:right}.bad{color:#b00;font-weight:bold}
.ok{color:#176117}img{max-width:100%;border:1px solid #ddd;margin:0.5rem 0}
.dim{color:#777}
"""


def write_html(result: SimResult, planned: PlanResult, images: list[Path], path: Path) -> None:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>tierwise simulate "
        f"{html.escape(result.spec)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>tierwise simulate — {html.escape(result.spec)}</h1>",
        f"<p>{fmt_duration(result.duration)} simulated, seed {result.seed}, "
        f"{result.requests:,} requests in {result.wall_seconds:.1f} s. "
        "<span class='dim'>Brackets: the plan's prediction.</span></p>",
    ]
    for name, run in result.runs.items():
        predicted = planned.strategies[PLAN_STRATEGY[name]]
        parts.append(f"<h2>{html.escape(name)}</h2><table><tr>")
        heads = [
            "feature",
            "placement",
            "latency",
            "budget",
            "p50",
            "p99",
            "misses",
            "availability",
            "escalated",
            "upstream",
            "$/month",
        ]
        parts.append("".join(f"<th>{h}</th>" for h in heads) + "</tr>")
        for f, p in zip(run.features, predicted.features, strict=True):
            ok = f.answered > 0 and f.latency <= f.deadline
            cells = [
                f.feature,
                f.label,
                f"<span class='{'ok' if ok else 'bad'}'>p{f.percentile:g} {_d(f.latency)}</span> "
                f"[{_d(p.latency)}]",
                _d(f.deadline),
                _d(f.p50),
                _d(f.p99),
                f"{f.misses:,} ({f.p_miss:.3%})",
                f"{f.availability:.3%}",
                f"{f.escalation_rate:.1%} [{p.escalation_rate:.0%}]",
                f"{fmt_bandwidth(f.upstream_bps)} [{fmt_bandwidth(p.upstream_bps)}]",
                f"{fmt_money(f.cost_per_month)} [{fmt_money(p.cost)}]",
            ]
            parts.append("<tr>" + "".join(_cell(c, i) for i, c in enumerate(cells)) + "</tr>")
        parts.append(
            "</table><table><tr><th>site</th><th>WAN down</th><th>outbox peak</th>"
            "<th>sent</th><th>dropped</th><th>max delay</th></tr>"
        )
        for s in run.sites:
            parts.append(
                f"<tr><td>{html.escape(s.site)}</td>"
                f"<td class='n'>{fmt_duration(s.wan_down_seconds)}</td>"
                f"<td class='n'>{fmt_size(s.outbox_peak_bytes)}</td><td class='n'>"
                f"{fmt_size(s.outbox_sent_bytes)}</td><td class='n'>"
                f"{fmt_size(s.outbox_dropped_bytes)}</td><td class='n'>"
                f"{fmt_duration(s.outbox_max_delay)}</td></tr>"
            )
        parts.append(
            f"</table><p>Cost {fmt_money(run.cost)} in this run = "
            f"{fmt_money(run.cost_per_month)}/month [plan: {fmt_money(predicted.cost)}/month]; "
            f"cloud instances: peak {run.cloud_peak_instances}.</p>"
        )
    for image in images:
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        parts.append(f"<h3>{html.escape(image.stem)}</h3><img src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def _d(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else fmt_duration(seconds)


def _cell(value: str, index: int) -> str:
    text = value if "<span" in value else html.escape(value)
    return f"<td class='n'>{text}</td>" if index >= 2 else f"<td>{text}</td>"
