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

from tierwise.spec.units import fmt_share
from tierwise.up.shift import Shift

if TYPE_CHECKING:
    from tierwise.up.report import SiteResult


def shift_section(
    shift: dict[str, Any], sites: dict[str, SiteResult], learning: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The report's `shift` block for the run's one shift (and the loop's answer to it)."""
    result = sites[shift["site"]]
    timeline = result.devices.get("timeline", [])
    feature = shift["feature"]
    at = shift["at_s"]
    retrained_at = _retrained_at(timeline, feature, at) if learning is not None else None
    end = retrained_at if retrained_at is not None else float("inf")
    before = _totals(line["features"].get(feature, {}) for line in timeline if line["t"] <= at)
    after = _totals(line["features"].get(feature, {}) for line in timeline if at < line["t"] < end)
    recovered = _totals(line["features"].get(feature, {}) for line in timeline if line["t"] >= end)
    verdict = next((v for v in result.drift if v["feature"] == feature), None)
    started = result.devices.get("run_started_wall")
    detected_after = None
    if verdict is not None and verdict["drifted"] and started is not None:
        detected_after = round(verdict["since"] - (started + at), 2)
    steps = []
    if learning is not None and started is not None:
        steps = [
            {**e, "after_shift_s": round(e["at"] - (started + at), 2)}
            for e in learning["events"]
            if e["feature"] == feature
        ]
        first = next((e for e in steps if e["step"] == "detected"), None)
        if first is not None and shift["site"] in first["sites"]:
            detected_after = first["after_shift_s"]
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
        "retrained": recovered if retrained_at is not None else None,
        "recovered_after_s": None if retrained_at is None else round(retrained_at - at, 2),
        "loop": steps,
        "drift": verdict,
        "detected_after_s": detected_after,
        "false_alarms": [f"{v['site']}/{v['feature']}" for v in others],
    }


def _retrained_at(timeline: list[dict[str, Any]], feature: str, at: float) -> float | None:
    """The first second after the shift from which a newer model version answered most of
    the feature's requests at the site (the loop's retrained model took over)."""
    first_version: int | None = None
    for line in timeline:
        versions = line["features"].get(feature, {}).get("versions") or {}
        if not versions:
            continue
        top = int(max(versions, key=lambda v: versions[v]))
        if first_version is None:
            first_version = top
        elif top > first_version and line["t"] > at:
            return float(line["t"])
    return None


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
    b, a, r = section["before"], section["after"], section.get("retrained")
    if r is not None:
        table.add_column("retrained", justify="right")
    rows = [
        ("accuracy (labelled answers)", "accuracy", fmt_share),
        ("escalated (cascade wanted the cloud)", "escalated", fmt_share),
        ("answers", "answered", lambda n: f"{n:,}"),
    ]
    for label, key, show in rows:
        cells = [show(b[key]), show(a[key])] + ([show(r[key])] if r is not None else [])
        table.add_row(label, *cells)
    verdict = section["drift"]
    if section["detected_after_s"] is not None and verdict is not None and not verdict["drifted"]:
        # found by the loop, then cleared: the retrained version's yardstick fits the stream
        seen = (
            f"{section['detected_after_s']:.1f}s after the shift; cleared by the end (v"
            f"{verdict['version']}: worst {verdict['column']} PSI {verdict['psi']:.2f} <= "
            f"{verdict['threshold']:.2f})"
        )
    elif section["detected_after_s"] is not None:
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
    if section.get("loop"):
        render_loop(section, console)


def render_loop(section: dict[str, Any], console: Console) -> None:
    """The learning loop's steps for the shifted feature, timed from the shift."""
    table = Table(title="learning loop — seconds after the shift", title_justify="left")
    table.add_column("s", justify="right")
    table.add_column("step")
    table.add_column("sites")
    table.add_column("detail")
    for e in section["loop"]:
        table.add_row(f"{e['after_shift_s']:.1f}", e["step"], ", ".join(e["sites"]), e["detail"])
    if section.get("recovered_after_s") is not None:
        table.add_row(
            f"{section['recovered_after_s']:.1f}",
            "serving",
            section["site"],
            "the retrained model answers most requests at the shifted site",
        )
    console.print(table)
