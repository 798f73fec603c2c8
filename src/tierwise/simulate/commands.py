"""`tierwise simulate SPEC`: the command's body, kept out of cli.py so that stays thin."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from tierwise.errors import UsageError
from tierwise.spec import load_spec
from tierwise.spec.units import DURATION


def run_simulate(
    spec_path: Path,
    strategy: str,
    duration: str,
    seed: int,
    json_out: Path | None,
    plots: Path | None,
    html: Path | None,
    console: Console,
) -> None:
    """Load, plan, simulate, then print and write what was asked for."""
    from tierwise.simulate.report import render
    from tierwise.simulate.run import STRATEGIES, simulate

    try:
        seconds = DURATION.parse(duration)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    chosen = list(STRATEGIES) if strategy == "all" else [strategy]
    spec = load_spec(spec_path)
    to_stdout = json_out is not None and str(json_out) == "-"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=to_stdout or not sys.stderr.isatty(),
    ) as bar:
        tasks = {name: bar.add_task(f"simulating {name}", total=1.0) for name in chosen}
        result, planned = simulate(
            spec,
            chosen,
            duration=seconds,
            seed=seed,
            progress=lambda name, done: bar.update(tasks[name], completed=done),
        )
    data = result.to_dict()
    if to_stdout:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    render(result, planned, console)
    if json_out is not None:
        _write(json_out, json.dumps(data, indent=2) + "\n")
        console.print(f"[dim]wrote {json_out}[/dim]")
    if plots is not None or html is not None:
        from tierwise.simulate.plots import write_plots

        folder = plots or (html.parent if html is not None else Path("."))
        images = write_plots(result, spec, folder)
        for image in images:
            console.print(f"[dim]wrote {image}[/dim]")
        if html is not None:
            from tierwise.simulate.html import write_html

            write_html(result, planned, images, html)
            console.print(f"[dim]wrote {html}[/dim]")


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
