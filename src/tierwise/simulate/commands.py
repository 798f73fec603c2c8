"""`tierwise simulate SPEC`: replay the plan request by request; print, plot and write figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tierwise.cli_options import SpecArgument, is_stdout, parse_duration, write_json, writing
from tierwise.console import console, err_console


def register(app: typer.Typer) -> None:
    """Add `simulate` to the `tierwise` app."""
    app.command("simulate")(simulate)


def simulate(
    spec: SpecArgument,
    strategy: Annotated[
        str, typer.Option(help="plan, cloud-only, edge-only, or all three")
    ] = "plan",
    duration: Annotated[str, typer.Option(help="simulated time, e.g. 24h or 15min")] = "24h",
    seed: Annotated[int, typer.Option(help="random seed (same seed, same run)")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the figures as JSON ('-' = stdout)")
    ] = None,
    plots: Annotated[Path | None, typer.Option(help="write PNG plots into this folder")] = None,
    html: Annotated[Path | None, typer.Option(help="write an HTML report (with plots)")] = None,
) -> None:
    """Replay the plan request by request under the spec's spikes and outages."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from tierwise.simulate.report import render
    from tierwise.simulate.run import STRATEGIES
    from tierwise.simulate.run import simulate as run_simulation
    from tierwise.spec import load_spec

    seconds = parse_duration(duration)
    chosen = list(STRATEGIES) if strategy == "all" else [strategy]
    loaded = load_spec(spec)
    to_stdout = is_stdout(json_out)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=to_stdout or not sys.stderr.isatty(),
    ) as bar:
        tasks = {name: bar.add_task(f"simulating {name}", total=1.0) for name in chosen}
        result, planned = run_simulation(
            loaded,
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
        write_json(json_out, data)
        console.print(f"[dim]wrote {json_out}[/dim]")
    if plots is not None or html is not None:
        from tierwise.simulate.plots import write_plots

        folder = plots or (html.parent if html is not None else Path("."))
        with writing(folder):
            images = write_plots(result, loaded, folder)
        for image in images:
            console.print(f"[dim]wrote {image}[/dim]")
        if html is not None:
            from tierwise.simulate.html import write_html

            with writing(html):
                write_html(result, planned, images, html)
            console.print(f"[dim]wrote {html}[/dim]")
