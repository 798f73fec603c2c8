"""`tierwise up SPEC`: the command's body (options in, run.json and the table out)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from tierwise.errors import UsageError
from tierwise.spec.units import DURATION
from tierwise.up.layout import STRATEGIES, Strategy


def run_up_command(
    spec: Path,
    duration: str,
    wan: str | None,
    scale: str,
    min_rate: str | None,
    out: Path | None,
    strategy: str,
    cache: Path | None,
    run_dir: Path | None,
    seed: int,
    console: Console,
    err_console: Console,
) -> None:
    """Parse the options, run the continuum, write run.json and print the table."""
    from tierwise.up.report import render_table
    from tierwise.up.run import UpOptions, default_cache, run_up
    from tierwise.up.scale import parse_min_rate, parse_scale
    from tierwise.up.wan_schedule import parse_wan

    try:
        seconds = DURATION.parse(duration)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    if seconds < 1:
        raise UsageError(f"--duration {duration}: run for at least 1s")
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    chosen: Strategy = "plan" if strategy == "plan" else "cloud-only"
    options = UpOptions(
        spec_path=spec,
        duration=seconds,
        wan=parse_wan(wan),
        scale=parse_scale(scale),
        min_rate=parse_min_rate(min_rate),
        strategy=chosen,
        cache=cache or default_cache(),
        run_dir=run_dir,
        seed=seed,
    )
    if not spec.is_file():
        raise UsageError(f"{spec}: no such spec file")

    def say(text: str) -> None:
        err_console.print(f"[dim]{text}[/dim]", highlight=False)

    report = run_up(options, console, say)
    render_table(report, console)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        console.print(f"[dim]wrote {out}[/dim]")
