"""What several verbs read and write alike: the spec argument, a duration, output files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

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


def is_stdout(path: Path | None) -> bool:
    """`--json -`: the output goes to stdout, and nothing else may."""
    return path is not None and str(path) == "-"


@contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Write `path` (a file or a folder) in this block; failing is a usage error naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON in `path`, its folder made if missing."""
    with writing(path):
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
