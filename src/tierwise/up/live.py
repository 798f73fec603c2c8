"""The live view of a running continuum: per site and feature, what the devices see right now.

Figures come from two places: each site's device process prints one JSON line per second
(requests answered, p50/p99 in that second, how many the cloud answered, misses), and each
edge agent's `/v1/state` (outbox depth, the model version it serves). In a terminal the
table redraws in place (rich Live); in a log (CI, a pipe) one line per site is printed every
few seconds instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tierwise.up.layout import FeatureRun

REQUESTS_METRIC = "tierwise_cloud_http_requests_total"


@dataclass
class SiteFeed:
    """Follows one device process's log for its newest JSON line."""

    site: str
    log: Path
    offset: int = 0
    last: dict[str, Any] = field(default_factory=dict)

    def poll(self) -> dict[str, Any]:
        try:
            with self.log.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return self.last
        end = chunk.rfind(b"\n")
        if end < 0:
            return self.last
        self.offset += end + 1
        for line in reversed(chunk[:end].splitlines()):
            if line.startswith(b"{"):
                try:
                    self.last = json.loads(line)
                except ValueError:
                    continue
                break
        return self.last


@dataclass
class ReplicaFeed:
    """Requests each cloud replica answered since the last look, from its own /metrics:
    behind the load balancer, this is who answered."""

    urls: dict[str, str]  # replica name -> its own address (not the balancer's)
    totals: dict[str, float] = field(default_factory=dict)

    def poll(self) -> dict[str, float | None]:
        """{replica: requests answered since the previous poll}; None for one not answering."""
        seen: dict[str, float | None] = {}
        for name, url in self.urls.items():
            try:
                text = httpx.get(url + "/metrics", timeout=1.0).text
            except httpx.HTTPError:
                seen[name] = None
                continue
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(REQUESTS_METRIC + "{") and not _housekeeping(line)
            )
            seen[name] = total - self.totals.get(name, total)
            self.totals[name] = total
        return seen


def _housekeeping(line: str) -> bool:
    """The balancer's health checks and our own scrapes are not traffic."""
    return 'route="/healthz"' in line or 'route="/metrics"' in line


def replicas_line(answered: dict[str, float | None], interval: float) -> str:
    """`cloud replicas: cloud-1 41 req/s, cloud-2 DOWN`."""
    parts = [
        f"{name} {'DOWN' if n is None else f'{n / interval:,.0f} req/s'}"
        for name, n in answered.items()
    ]
    return "cloud replicas: " + ", ".join(parts) if parts else ""


def agent_state(url: str) -> dict[str, Any]:
    """An agent's /v1/state, or {} if it does not answer right now."""
    try:
        found: dict[str, Any] = httpx.get(url + "/v1/state", timeout=1.0).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return found


def render(
    title: str,
    runs: list[FeatureRun],
    feeds: dict[str, dict[str, Any]],
    states: dict[str, dict[str, Any]],
    interval: float,
) -> Table:
    """The table: one row per (site, feature)."""
    table = Table(title=title, title_justify="left", expand=False)
    for name, justify in (
        ("site", "left"),
        ("feature", "left"),
        ("runs", "left"),
        ("req/s", "right"),
        ("p50", "right"),
        ("p99 / budget", "right"),
        ("cloud", "right"),
        ("misses", "right"),
        ("outbox", "right"),
        ("model", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for site, line in feeds.items():
        state = states.get(site, {})
        outbox = (state.get("outbox") or {}).get("depth_events")
        first = True
        for run in runs:
            window = line.get("features", {}).get(run.name)
            if window is None or all(s.site != site for s in run.sites):
                continue
            answered = window.get("answered", 0)
            p99 = window.get("p99")
            budget = run.feature.deadline * 1000
            p99_text = Text(f"{_ms(p99)} / {_ms(budget)}")
            if p99 is not None and p99 > budget:
                p99_text.stylize("bold red")
            served = state.get("features", {}).get(run.name, {})
            model = f"{served.get('package')} v{served.get('version')}" if served else run.mode
            table.add_row(
                site if first else "",
                run.name,
                run.mode,
                f"{answered / interval:,.1f}",
                _ms(window.get("p50")),
                p99_text,
                f"{window.get('cloud', 0) / answered:.0%}" if answered else "-",
                str(window.get("misses", 0)),
                "" if outbox is None or not first else f"{outbox:,}",
                model,
            )
            first = False
    return table


def log_lines(feeds: dict[str, dict[str, Any]], states: dict[str, dict[str, Any]]) -> list[str]:
    """A compact line per site, for logs that cannot redraw a table."""
    out = []
    for site, line in feeds.items():
        features = line.get("features", {})
        total = sum(f.get("total", 0) for f in features.values())
        misses = sum(f.get("misses", 0) for f in features.values())
        outbox = (states.get(site, {}).get("outbox") or {}).get("depth_events")
        out.append(
            f"  t={line.get('t', 0):5.1f}s {site}: {total:,} answered, {misses:,} missed, "
            f"outbox {outbox if outbox is not None else '-'}"
        )
    return out


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:,.0f}s"
    return f"{value:,.1f}ms" if value < 100 else f"{value:,.0f}ms"


def console_is_live(console: Console) -> bool:
    return console.is_terminal and not console.is_dumb_terminal
