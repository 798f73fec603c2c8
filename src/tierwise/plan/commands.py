"""`tierwise plan SPEC`: place every feature and training job, print why, write JSON or HTML."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tierwise.cli_options import SpecArgument, is_stdout, write_json, writing
from tierwise.console import console


def register(app: typer.Typer) -> None:
    """Add `plan` to the `tierwise` app."""
    app.command("plan")(plan)


def plan(
    spec: SpecArgument,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="write the plan as JSON to this file ('-' = stdout)"),
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", help="write an HTML report")] = None,
    alternatives: Annotated[bool, typer.Option(help="list the rejected alternatives")] = True,
) -> None:
    """Place every feature (device / edge / cloud / cascade) and training job, and explain why."""
    from tierwise.plan.planner import plan as make_plan
    from tierwise.plan.report import render
    from tierwise.spec import load_spec

    result = make_plan(load_spec(spec))
    if is_stdout(json_out):
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    render(result, console, alternatives=alternatives)
    if json_out is not None:
        write_json(json_out, result.to_dict())
        console.print(f"[dim]wrote {json_out}[/dim]")
    if html is not None:
        from tierwise.plan.html import write_html

        with writing(html):
            write_html(result, html)
        console.print(f"[dim]wrote {html}[/dim]")
