"""A site's MQTT broker for `tierwise up --protocol mqtt`: Mosquitto with a config tierwise writes.

The config is one an operator could keep: a loopback listener, no anonymous clients
(`allow_anonymous false`, a `password_file` made with `mosquitto_passwd`), and limits that
suit an agent keeping a persistent session:

- `max_queued_messages`: Mosquitto's default (1,000) silently drops QoS 1 requests queued
  for an agent that is restarting beyond that many; a site's devices publish more than that
  in a few seconds, so the limit is raised and bounded in bytes instead;
- `set_tcp_nodelay`: answers are small packets; Nagle's algorithm would hold one back
  behind the previous one's ACK (tens of ms on a request/answer exchange);
- `persistence false`: the sessions live in the broker's memory, which outlives every agent
  restart; a broker restart (not part of a run) would lose queued requests.
"""

from __future__ import annotations

import getpass
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tierwise.errors import LinkError, TierwiseError
from tierwise.up.processes import Child, Supervisor

MOSQUITTO_PATHS = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")

MAX_QUEUED_MESSAGES = 1_000_000
MAX_QUEUED_BYTES = 256 * 1024 * 1024  # per client, in the broker's memory


class BrokerUnavailableError(TierwiseError):
    """Mosquitto (or mosquitto_passwd) is not installed here."""


def find_program(names: tuple[str, ...]) -> str:
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    raise BrokerUnavailableError(
        f"{names[0]} is not installed: apt-get install mosquitto (or brew install mosquitto), "
        "or give --mqtt-broker URL of a running broker"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class MosquittoConfig:
    """Mosquitto's config, password file and argv for one site's broker under `directory`."""

    directory: Path
    users: dict[str, str]  # username -> password
    port: int = 0
    host: str = "127.0.0.1"
    extra_lines: list[str] = field(default_factory=list)

    @property
    def conf_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def password_path(self) -> Path:
        return self.directory / "passwd"

    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def write(self) -> list[str]:
        """Write the password file and the config (a free port if none was set); the argv."""
        mosquitto = find_program(MOSQUITTO_PATHS)
        passwd = find_program(("mosquitto_passwd", "/usr/bin/mosquitto_passwd"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.password_path.unlink(missing_ok=True)
        self.password_path.touch(mode=0o600)
        for user, password in self.users.items():
            # -b takes the password on the command line: only a fresh random one of this
            # run, in a file readable by us only afterwards.
            subprocess.run(
                [passwd, "-b", str(self.password_path), user, password],
                check=True,
                capture_output=True,
            )
        self.password_path.chmod(0o600)
        if self.port == 0:
            self.port = free_port(self.host)
        lines = [
            # Started as root, Mosquitto would switch to the `mosquitto` user, who cannot
            # read the files written here (0600): it runs as whoever runs tierwise.
            f"user {getpass.getuser()}",
            f"listener {self.port} {self.host}",
            "allow_anonymous false",
            f"password_file {self.password_path}",
            "persistence false",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            f"max_queued_bytes {MAX_QUEUED_BYTES}",
            "max_inflight_messages 0",
            "set_tcp_nodelay true",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            *self.extra_lines,
        ]
        self.conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.conf_path.chmod(0o600)
        return [mosquitto, "-c", str(self.conf_path)]


@dataclass(frozen=True)
class SiteBroker:
    """Where a site's agent and devices meet over MQTT, and who each of them is there."""

    url: str  # without credentials
    agent_user: str | None
    agent_password_file: Path | None
    device_user: str | None
    device_password: str | None

    def agent_args(self) -> list[str]:
        """`tierwise edge` arguments for this broker (the password from a file, not argv)."""
        args = ["--mqtt", self.url]
        if self.agent_user is not None:
            args += ["--mqtt-username", self.agent_user]
        if self.agent_password_file is not None:
            args += ["--mqtt-password-file", str(self.agent_password_file)]
        return args

    def device_config(self, site: str) -> dict[str, str | None]:
        return {
            "url": self.url,
            "username": self.device_user,
            "password": self.device_password,
            "client_id": f"tierwise-devices-{site}",
        }


def start_brokers(
    sup: Supervisor, run_dir: Path, sites: list[str], external: str | None
) -> tuple[dict[str, SiteBroker], list[Child]]:
    """One Mosquitto per site (users `edge-SITE` and `devices-SITE`, fresh passwords), or
    every site on the `external` broker URL (its credentials, if any, for all); the brokers'
    processes (none for an external one)."""
    from tierwise.edge.mqtt_wire import BrokerAddress

    if external is not None:
        address = BrokerAddress.parse(external, "--mqtt-broker")
        password_file = None
        if address.password is not None:
            password_file = run_dir / "mqtt-password"
            password_file.write_text(address.password + "\n", encoding="utf-8")
            password_file.chmod(0o600)
        shared = SiteBroker(
            address.url(), address.username, password_file, address.username, address.password
        )
        return dict.fromkeys(sites, shared), []
    brokers: dict[str, SiteBroker] = {}
    children = []
    for site in sites:
        agent_user, device_user = f"edge-{site}", f"devices-{site}"
        users = {agent_user: secrets.token_urlsafe(24), device_user: secrets.token_urlsafe(24)}
        config = MosquittoConfig(run_dir / f"broker-{site}", users)
        child = sup.spawn(f"broker-{site}", config.write())
        password_file = config.directory / "agent-password"
        password_file.write_text(users[agent_user] + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        brokers[site] = SiteBroker(
            config.url(), agent_user, password_file, device_user, users[device_user]
        )
        children.append(child)
    for site, child in zip(sites, children, strict=True):
        wait_listening(child, brokers[site].url)
    return brokers, children


def wait_listening(child: Child, url: str, timeout: float = 15.0) -> None:
    """Until the broker accepts connections (its own log line may sit in a stdout buffer)."""
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            child.url = url
            return
        except OSError:
            if not child.alive() or time.monotonic() > deadline:
                why = f"{child.name}: {url} does not accept connections: {child.tail()}"
                raise LinkError(why) from None
            time.sleep(0.02)
