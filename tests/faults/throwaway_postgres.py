"""A PostgreSQL cluster of the test's own, on a free port in a temporary directory, that the
test may restart at will: the machine's shared server on 5432 is never touched.

Built from Debian's server binaries (/usr/lib/postgresql/<major>/bin), run as the `postgres`
user (PostgreSQL refuses to run as root). Missing binaries or user: a skip that says why,
a failure under CI=true, which must run every fault.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

USER = "postgres"


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{why} (CI must run the PostgreSQL restart fault)")
    pytest.skip(why)


class Cluster:
    """`pg_ctl` on one data directory, as the postgres user."""

    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir, self.data, self.port = bin_dir, root / "data", port
        self.log = root / "server.log"
        self.url = f"postgresql+psycopg://{USER}@127.0.0.1:{port}/postgres"
        self.sockets = root

    def _run(self, *argv: str) -> None:
        cmd = ["runuser", "-u", USER, "--", *argv]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")

    def init(self) -> None:
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", USER)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        self._pg_ctl("start", "-w", "-o", options)

    def restart_immediately(self) -> None:
        """Stop without a checkpoint (as a crash does: recovery replays the WAL), start again."""
        self._pg_ctl("stop", "-m", "immediate")
        self.start()

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args)


@contextmanager
def throwaway_postgres() -> Iterator[Cluster]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        _unavailable("no PostgreSQL server binaries under /usr/lib/postgresql")
    assert bin_dir is not None
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        _unavailable("a throwaway PostgreSQL cluster needs root (to run it as postgres)")
    try:
        owner = pwd.getpwnam(USER)
    except KeyError:
        _unavailable(f"no {USER!r} user to run a throwaway PostgreSQL cluster")
        raise
    root = Path(tempfile.mkdtemp(prefix="tierwise-pg-"))
    os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(bin_dir, root, _free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):  # not running (init or start failed)
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
