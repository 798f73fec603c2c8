"""Every child of `tierwise up` goes away with it: on a normal exit, and when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tierwise.errors import TierwiseError
from tierwise.up.processes import Supervisor, python_module

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie (exited, not yet reaped by init) counts as gone
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split()[2] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_children_are_stopped_when_the_supervisor_exits(tmp_path: Path) -> None:
    with Supervisor(tmp_path) as sup:
        child = sup.spawn("sleeper", SLEEPER)
        sup.wait_ready(child, r"^up$", timeout=30)
        pid = child.pid
        assert os.getpgid(pid) == pid  # its own process group
    assert _gone(pid)


def test_a_child_that_dies_while_starting_names_its_log(tmp_path: Path) -> None:
    with Supervisor(tmp_path) as sup:
        child = sup.spawn("broken", [sys.executable, "-c", "raise SystemExit('boom')"])
        with pytest.raises(TierwiseError, match=r"broken exited with code 1 .*boom"):
            sup.wait_ready(child, "never printed", timeout=30)


def test_children_die_with_a_supervisor_killed_by_sigkill(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tierwise.up.processes import Supervisor\n"
        f"sup = Supervisor(Path({str(tmp_path)!r})).__enter__()\n"
        f"child = sup.spawn('sleeper', {SLEEPER!r})\n"
        "sup.wait_ready(child, r'^up$', timeout=30)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert runner.stdout is not None
        pid = int(runner.stdout.readline())
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
        assert _gone(pid), "the child outlived its SIGKILLed supervisor"
    finally:
        runner.kill()


def test_python_module_uses_this_interpreter() -> None:
    assert python_module("tierwise.wan", "--help") == [
        sys.executable,
        "-m",
        "tierwise.wan",
        "--help",
    ]
