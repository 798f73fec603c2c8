"""The CLI's two consoles: results on stdout, progress, notes and errors on stderr.

Every verb's `commands.py` prints through these, and `cli.main` prints errors through
`err_console`; they live here, not in `cli.py`, so a verb never imports the app it is part of.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console


def _console(stderr: bool = False) -> Console:
    """A terminal keeps its width; a pipe or a CI log gets 140 columns, not rich's 80."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=140)


console = _console()
err_console = _console(stderr=True)


def timed_progress() -> Callable[[str], None]:
    """A progress callback: each message on stderr after the seconds since this call."""
    start = time.monotonic()

    def report(message: str) -> None:
        err_console.print(f"[dim]{time.monotonic() - start:6.1f}s[/dim] {message}", highlight=False)

    return report
