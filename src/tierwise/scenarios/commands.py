"""`tierwise scenario list|train`: the examples' data sets and models, from the command line.

Importing this module costs only typer and rich; the scenarios load inside the commands.
`register(app)` adds the `scenario` group to the main CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tierwise.console import console, timed_progress

scenario_app = typer.Typer(
    help="Data sets and models for the examples (real data, or labelled generators).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add `scenario list|train` to the `tierwise` app."""
    app.add_typer(scenario_app, name="scenario")


@scenario_app.command("list")
def scenario_list() -> None:
    """The scenarios, which example each serves, and whether its data is real or generated."""
    from rich.table import Table

    from tierwise.scenarios import SCENARIOS

    table = Table("scenario", "example", "data", "summary")
    for name, cls in sorted(SCENARIOS.items()):
        table.add_row(name, cls.example, "SYNTHETIC" if cls.synthetic else "real", cls.summary)
    console.print(table)


@scenario_app.command("train")
def scenario_train(
    name: Annotated[str, typer.Argument(help="scenario (digits) or example (camera) name")],
    out: Annotated[Path, typer.Option(help="directory for the models and data")] = Path("models"),
) -> None:
    """Train a scenario's edge and cloud models; write them with its eval and test data."""
    from tierwise.scenarios.build import train_scenario

    files = train_scenario(name, out, timed_progress())
    for path in (files.edge, files.cloud, files.eval, files.test):
        console.print(f"wrote {path}")
