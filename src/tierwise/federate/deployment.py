"""Flower's Deployment Engine on this machine: a SuperLink, and per site a SuperNode + ClientApp.

Every component is a real process on 127.0.0.1, started the way an operator would:
- the cloud: `flower-superlink --insecure --port P` (Fleet, Control and Runtime APIs over
  HTTP on one port), which starts each run's ServerApp in a `flwr-serverapp` process;
- each site: a SuperNode (`site_node`, i.e. `flower-supernode` with LAN polling) started
  with `--isolation process`, plus that site's long-lived ClientApp process (`site_worker`);
  or, for the plain-Flower baseline, stock `flower-supernode` spawning a ClientApp per task;
- the run: `flwr run APP tierwise`, with the connection kept in the CLI's own config file
  (`$FLWR_HOME/config.toml`), as Flower 1.42 expects.
Each component has its own FLWR_HOME and log file under the run directory. Everything this
module starts, it stops (by process group), also when the caller fails.

A site may reach the SuperLink across an emulated WAN (`wan`): its SuperNode then connects
to its own `tierwise.wan` proxy (run in this process), which can keep a copy of every byte
that crossed (`wan_capture`), for audits of what a site sends and receives.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from tierwise.errors import LinkError, TierwiseError
from tierwise.federate.polling import SUPEREXEC_POLL_ENV, SUPEREXEC_POLL_S
from tierwise.federate.sitedata import site_dirname
from tierwise.wan import ProxyThread, WanConditions, WanProxy

Mode = Literal["tierwise", "plain"]
NodeConfig = dict[str, str | int | float]
CONNECTION = "tierwise"
SERVERAPPS = {
    "tierwise": "tierwise.federate.server_app:app",
    "plain": "tierwise.federate.plain_flower:app",
}
CLIENTAPP = "tierwise.federate.client_app:app"
PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>


@dataclass
class SiteProcesses:
    """One site: its SuperNode and (in tierwise mode) its ClientApp process."""

    site: str
    data_dir: Path
    port: int
    supernode: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None = None

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self.worker, self.supernode) if p is not None]


@dataclass
class Federation:
    """Starts, runs and stops one federation; use as a context manager."""

    run_dir: Path
    site_dirs: dict[str, Path]
    mode: Mode = "tierwise"
    # site -> extra node-config entries: its field data, or (tests/chaos only) a fault
    # such as {"fault": "crash", "fault-round": 2}
    node_config: dict[str, NodeConfig] = field(default_factory=dict)
    # site -> the WAN between it and the SuperLink; capture: a directory for <site>.wan files
    wan: dict[str, WanConditions] = field(default_factory=dict)
    wan_capture: Path | None = None
    superlink: subprocess.Popen[bytes] | None = None
    superlink_port: int = 0
    sites: dict[str, SiteProcesses] = field(default_factory=dict)
    proxies: dict[str, ProxyThread] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _previous_sigterm: Any = None

    def __enter__(self) -> Federation:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so __exit__ stops us
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the SuperLink, wait for its port, then every site's processes."""
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.superlink_port = free_port()
        home = self.run_dir / "cloud" / "flwr-home"
        self.superlink = self._spawn(
            "superlink",
            [
                _script("flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.superlink_port),
                "--disable-runtime-dependency-installation",
            ],
            home,
        )
        wait_for_port(self.superlink_port, 60.0, self.superlink, "the SuperLink")
        for site, data_dir in self.site_dirs.items():
            self.sites[site] = self._start_site(site, data_dir)

    def _route_to_superlink(self, site: str) -> str:
        """Where `site`'s SuperNode connects: the SuperLink, or the site's WAN proxy in front of
        it (started here, stopped by `stop`) when the site has one."""
        conditions = self.wan.get(site)
        if conditions is None:
            return f"127.0.0.1:{self.superlink_port}"
        capture = None
        if self.wan_capture is not None:
            capture = self.wan_capture / f"{site_dirname(site)}.wan"
        proxy = ProxyThread(
            WanProxy(("127.0.0.1", self.superlink_port), conditions, capture=capture)
        )
        self.proxies[site] = proxy.__enter__()
        return f"127.0.0.1:{proxy.proxy.port}"

    def _start_site(self, site: str, data_dir: Path) -> SiteProcesses:
        port = free_port()
        config = {"data-dir": str(data_dir), "site": site, **self.node_config.get(site, {})}
        node_config = " ".join(f"{k}={json.dumps(v)}" for k, v in config.items())
        common = [
            "--insecure",
            "--superlink",
            self._route_to_superlink(site),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--node-config",
            node_config,
        ]
        home = data_dir / "flwr-home"
        if self.mode == "plain":
            node = self._spawn(f"{site}-supernode", [_script("flower-supernode"), *common], home)
            return SiteProcesses(site, data_dir, port, node)
        node = self._spawn(
            f"{site}-supernode",
            [
                sys.executable,
                "-m",
                "tierwise.federate.site_node",
                *common,
                "--isolation",
                "process",
            ],
            home,
        )
        worker = self._spawn(
            f"{site}-clientapp",
            [
                sys.executable,
                "-m",
                "tierwise.federate.site_worker",
                "--runtime-api-address",
                f"127.0.0.1:{port}",
            ],
            home,
        )
        return SiteProcesses(site, data_dir, port, node, worker)

    def stop(self) -> None:
        """Stop every process this federation started: TERM, then KILL after a grace period."""
        procs = [p for s in self.sites.values() for p in s.processes()]
        if self.superlink is not None:
            procs.append(self.superlink)
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5.0)
        for proc in procs:  # children (the SuperLink's ServerApp) share the group
            _signal_group(proc, signal.SIGKILL)
        for proxy in self.proxies.values():  # after the processes: their last bytes count
            proxy.__exit__(None, None, None)
        self.proxies.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def kill_site(self, site: str) -> None:
        """SIGKILL a site's processes, as a power cut would."""
        for proc in self.sites[site].processes():
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=5.0)

    # --- running an app -----------------------------------------------------------------
    def submit(self, settings_path: Path) -> str:
        """Write the Flower app and the CLI's connection config, then `flwr run` it."""
        app_dir = write_app(self.run_dir / "app", SERVERAPPS[self.mode], settings_path)
        cli_home = self.run_dir / "operator" / "flwr-home"
        write_connection(cli_home, self.superlink_port)
        done = subprocess.run(
            [_script("flwr"), "run", str(app_dir), CONNECTION, "--format", "json"],
            env=_env(cli_home),
            capture_output=True,
            timeout=120,
            check=False,
        )
        (self.run_dir / "logs" / "flwr-run.log").write_bytes(done.stdout + done.stderr)
        try:
            answer = json.loads(done.stdout.decode() or "{}")
        except json.JSONDecodeError:
            answer = {}
        if done.returncode != 0 or not answer.get("success", False):
            tail = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()[-3:]
            raise LinkError(f"flwr run failed (exit {done.returncode}): {' | '.join(tail)}")
        return str(answer.get("run-id", ""))

    def check_alive(self) -> None:
        """Raise if the SuperLink died (a run cannot finish without it)."""
        if self.superlink is not None and self.superlink.poll() is not None:
            raise TierwiseError(
                f"the SuperLink exited with code {self.superlink.returncode}; "
                f"see {self.run_dir / 'logs' / 'superlink.log'}"
            )

    def _spawn(self, name: str, argv: list[str], home: Path) -> subprocess.Popen[bytes]:
        home.mkdir(parents=True, exist_ok=True)
        log = (self.run_dir / "logs" / f"{name}.log").open("ab")
        self._logs.append(log)
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(home),
            cwd=str(home),
            start_new_session=True,  # its own process group: stop() reaches its children
            preexec_fn=_die_with_parent,
        )


def write_app(app_dir: Path, serverapp: str, settings_path: Path) -> Path:
    """The Flower App (FAB source): a pyproject naming our ServerApp and ClientApp."""
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "tierwise-federate"
version = "1.0.0"
description = "tierwise federated training job"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "tierwise"

[tool.flwr.app.components]
serverapp = "{serverapp}"
clientapp = "{CLIENTAPP}"

[tool.flwr.app.config]
settings = {json.dumps(str(settings_path))}
""",
        encoding="utf-8",
    )
    return app_dir


def write_connection(cli_home: Path, port: int) -> Path:
    """`flwr`'s connection settings for our SuperLink, in its config file."""
    cli_home.mkdir(parents=True, exist_ok=True)
    path = cli_home / "config.toml"
    path.write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n'
        f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{port}"\ninsecure = true\n',
        encoding="utf-8",
    )
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TierwiseError(f"{what} exited with code {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise LinkError(f"{what} did not open 127.0.0.1:{port} within {timeout:.0f}s")


def _script(name: str) -> str:
    """A console script installed next to this Python (the venv's bin directory)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _env(flwr_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["FLWR_HOME"] = str(flwr_home)
    env["FLWR_TELEMETRY_ENABLED"] = "0"  # no traffic leaves this machine
    env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env[SUPEREXEC_POLL_ENV] = str(SUPEREXEC_POLL_S)  # the SuperLink's SuperExec inherits it
    # the SuperLink and SuperNodes start `flower-superexec`/`flwr-*` by name
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _die_with_parent() -> None:
    """In the child, before exec: be killed if the process that started us dies (Linux).

    A runner killed without cleanup (SIGKILL, an OOM kill) must not leave a federation
    running: the kernel delivers SIGKILL to each component when its parent goes.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: stop() and the signal handlers still clean up


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
