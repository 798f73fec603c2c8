"""`tierwise schema` and `tierwise validate SPEC`: the spec's JSON Schema, and a spec checked.

`register(app)` adds both to the main CLI.
"""

from __future__ import annotations

import json
import sys

import typer

from tierwise.cli_options import SpecArgument
from tierwise.console import console


def register(app: typer.Typer) -> None:
    """Add `schema` and `validate` to the `tierwise` app."""
    app.command("schema")(schema)
    app.command("validate")(validate)


def schema() -> None:
    """Print the JSON Schema of the spec (for editors and CI linters)."""
    from tierwise.spec.model import Spec

    sys.stdout.write(json.dumps(Spec.model_json_schema(), indent=2) + "\n")


def validate(spec: SpecArgument) -> None:
    """Check a spec and say what is wrong, line by line."""
    from tierwise.spec import load_spec

    loaded = load_spec(spec)
    console.print(
        f"{spec}: ok — {len(loaded.sites)} sites, {len(loaded.models)} models, "
        f"{len(loaded.features)} features, {len(loaded.training)} training jobs"
    )
