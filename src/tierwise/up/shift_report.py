"""What a `--shift` run shows: the shifted stream before and after, and when drift was seen.

From the site's device timeline (one window of counts a second): accuracy on the labelled
answers and the share of answers the cascade wanted from the cloud, over the windows before
the shift and those after it (the window the shift falls in counts after). From the cloud's
drift verdicts read at the end of the run: whether the shifted stream was found drifted and
how long after the shift, and every other site and feature found drifted (false alarms:
their streams did not change).
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from tierwise.up.shift import Shift

if TYPE_CHECKING:
    from tierwise.up.report import SiteResult


def shift_section(shift: dict[str, Any], sites: dict[str, SiteResult]) -> dict[str, Any]:
    """The report's `shift` block for the run's one shift."""
    result = sites[shift["site"]]
    timeline = result.devices.get("timeline", [])
    feature = shift["feature"]
    before = _totals(
        line["features"].get(feature, {}) for line in timeline if line["t"] <= shift["at_s"]
    )
    after = _totals(
        line["features"].get(feature, {}) for line in timeline if line["t"] > shift["at_s"]
    )
    verdict = next((v for v in result.drift if v["feature"] == feature), None)
    started = result.devices.get("run_started_wall")
    detected_after = None
    if verdict is not None and verdict["drifted"] and started is not None:
        detected_after = round(verdict["since"] - (started + shift["at_s"]), 2)
    others = [
        v
        for s in sites.values()
        for v in s.drift
        if v["drifted"] and (v["site"], v["feature"]) != (shift["site"], feature)
    ]
    return {
        **shift,
        "before": before,
        "after": after,
        "drift": verdict,
        "detected_after_s": detected_after,
        "false_alarms": [f"{v['site']}/{v['feature']}" for v in others],
    }


def _totals(windows: Any) -> dict[str, Any]:
    n = {"answered": 0, "correct": 0, "labelled": 0, "wanted_cloud": 0}
    for w in windows:
        for key in n:
            n[key] += w.get(key, 0)
    return {
        **n,
        "accuracy": n["correct"] / n["labelled"] if n["labelled"] else None,
        "escalated": n["wanted_cloud"] / n["answered"] if n["answered"] else None,
    }


def render_shift(section: dict[str, Any], console: Console) -> None:
    shift = Shift(**{f.name: section[f.name] for f in fields(Shift)})
    table = Table(title=f"shift — {shift.describe()}", title_justify="left")
    table.add_column("figure")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    b, a = section["before"], section["after"]
    table.add_row("accuracy (labelled answers)", _pct(b["accuracy"]), _pct(a["accuracy"]))
    table.add_row(
        "escalated (cascade wanted the cloud)", _pct(b["escalated"]), _pct(a["escalated"])
    )
    table.add_row("answers", f"{b['answered']:,}", f"{a['answered']:,}")
    verdict = section["drift"]
    if section["detected_after_s"] is not None:
        seen = (
            f"{section['detected_after_s']:.1f}s after the shift: {verdict['column']} PSI "
            f"{verdict['psi']:.2f} > {verdict['threshold']:.2f}, {verdict['columns_over']} columns"
        )
    elif verdict is None:
        seen = "no verdict (too few rows, or the package has no drift reference)"
    else:
        seen = (
            f"not detected (worst {verdict['column']} PSI {verdict['psi']:.2f} <= "
            f"{verdict['threshold']:.2f})"
        )
    table.add_row("drift (cloud)", "", seen)
    alarms = section["false_alarms"]
    table.add_row("drift elsewhere (false alarms)", "", ", ".join(alarms) if alarms else "none")
    console.print(table)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
