"""What several verbs read from the command line alike: the spec argument and a duration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tierwise.errors import UsageError

SpecArgument = Annotated[Path, typer.Argument(help="the spec YAML")]


def parse_duration(text: str) -> float:
    """Seconds from a human duration (`90s`, `15min`, `24h`); a bad one is a usage error."""
    from tierwise.spec.units import DURATION

    try:
        return DURATION.parse(text)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
