"""Every command's `--help` is what the golden files in tests/cli_help/ say, word for word.

The help text is the CLI's contract with its users and with the docs; a refactor of where the
commands live must not change it. After a deliberate change, rewrite the golden files with
`TIERWISE_WRITE_HELP=1 pytest tests/test_cli_help.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from tierwise.cli import app

GOLDEN = Path(__file__).parent / "cli_help"


def _command_paths(group: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            paths += _command_paths(command, (*prefix, name))
    return paths


COMMANDS = sorted(_command_paths(typer.main.get_command(app)))


def _golden(path: tuple[str, ...]) -> Path:
    return GOLDEN / ("_".join(("tierwise", *path)) + ".txt")


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "tierwise")
def test_help_is_unchanged(path: tuple[str, ...]) -> None:
    run = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"}, prog_name="tierwise")
    assert run.exit_code == 0, run.output
    if os.environ.get("TIERWISE_WRITE_HELP"):
        _golden(path).write_text(run.output, encoding="utf-8")
    assert run.output == _golden(path).read_text(encoding="utf-8")


def test_every_golden_file_names_a_command() -> None:
    assert sorted(GOLDEN.glob("*.txt")) == sorted(_golden(p) for p in COMMANDS)
