"""What several verbs read from the command line alike: the spec argument."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SpecArgument = Annotated[Path, typer.Argument(help="the spec YAML")]
