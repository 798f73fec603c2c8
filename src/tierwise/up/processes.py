"""Start the continuum's processes and make sure every one of them goes away with us.

Each child runs in its own session (process group), so a stop reaches whatever it starts in
turn, and asks the kernel for SIGKILL should the supervisor die without cleaning up
(PR_SET_PDEATHSIG: a `kill -9` of `tierwise up` leaves no orphan). Output goes to one log
file per child; a child is "ready" once its log shows the line it prints when it serves.
`stop_all` stops children in the reverse order of their start (devices before agents before
the WAN before the cloud) with SIGTERM, then SIGKILL for whatever outlives its grace.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tierwise.errors import LinkError, TierwiseError

PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>
DEFAULT_STOP_GRACE_S = 15.0


@dataclass
class Child:
    """One process of the continuum, its log, and how to reach it once it serves."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the child's whole process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])


@dataclass
class Supervisor:
    """Owns every child process; a context manager that stops them all on the way out."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)
    _previous: dict[int, object] = field(default_factory=dict)

    def __enter__(self) -> Supervisor:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so __exit__ stops the children
            self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _interrupt)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        """Start `argv` as its own process group, dying with us, logging to log_dir/name.log."""
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def wait_ready(self, child: Child, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait until the child's log has a line matching `pattern` (a regex); its match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = child.log.read_text("utf-8", errors="replace") if child.log.exists() else ""
            found = regex.search(text)
            if found:
                return found
            if not child.alive():
                raise TierwiseError(
                    f"{child.name} exited with code {child.proc.returncode} while starting: "
                    f"{child.tail()} (log: {child.log})"
                )
            if time.monotonic() > deadline:
                raise LinkError(
                    f"{child.name} was not ready within {timeout:.0f} s: {child.tail()} "
                    f"(log: {child.log})"
                )
            time.sleep(0.05)

    def check_alive(self) -> None:
        """Raise if a child died on its own (the run cannot go on without it)."""
        for child in self.children:
            if not child.alive():
                raise TierwiseError(
                    f"{child.name} exited with code {child.proc.returncode}: {child.tail()} "
                    f"(log: {child.log})"
                )

    def stop(self, *children: Child, grace: float = DEFAULT_STOP_GRACE_S) -> None:
        """SIGTERM the children's groups all at once, SIGKILL what is left after `grace`."""
        for child in children:
            if child.alive():
                child.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.proc.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                child.signal(signal.SIGKILL)
                child.proc.wait(5)
            # whatever the child started and left behind in its group goes too
            child.signal(signal.SIGKILL)

    def stop_all(self, grace: float = DEFAULT_STOP_GRACE_S) -> None:
        """Stop every child still running: devices, then agents, WAN and cloud (reverse order)."""
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                self.stop(child, grace=grace)


def python_module(module: str, *args: str) -> list[str]:
    """argv running `python -m module args` with this interpreter (the same venv)."""
    return [sys.executable, "-m", module, *args]


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when the supervisor dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the supervisor's own stop and signal handlers still clean up
