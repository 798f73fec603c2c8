"""What the MQTT tests share: a real Mosquitto with the config `tierwise up` writes, and an agent
process serving an installed package to it.

Mosquitto is found on the machine (`make setup` installs it when missing). Without it the
tests skip with the reason, unless CI=true, where a missing broker is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.package.support import make_keys

from tierwise.edge.mqtt_wire import BrokerAddress
from tierwise.up.broker import BrokerUnavailableError, MosquittoConfig

from .support import FEATURE, SITE, AgentProcess, build_package

AGENT_USER, DEVICE_USER = "edge-plant-a", "device"
PASSWORDS = {AGENT_USER: "agent-secret-for-tests", DEVICE_USER: "device-secret-for-tests"}
DEADLINE_MS = 150.0
SYSTEM_BROKER = ("127.0.0.1", 1883)


def broker_missing(why: str) -> None:
    """Skip with the reason; under CI a missing broker fails the test instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"MQTT broker needed under CI: {why}")
    pytest.skip(why)


def system_broker() -> BrokerAddress:
    """The machine's Mosquitto on 127.0.0.1:1883 (anonymous), as `make test` starts it."""
    try:
        socket.create_connection(SYSTEM_BROKER, timeout=1).close()
    except OSError as exc:
        broker_missing(f"no MQTT broker on {SYSTEM_BROKER[0]}:{SYSTEM_BROKER[1]}: {exc}")
    return BrokerAddress(*SYSTEM_BROKER, tls=False)


def wait_listening(
    host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 10
) -> None:
    """Until the broker accepts connections (its log line may sit in a stdout buffer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited ({proc.returncode}) before listening"
                ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@dataclass
class Broker:
    """A Mosquitto of our own, with tierwise's config: users, no anonymous access."""

    config: MosquittoConfig
    proc: subprocess.Popen[bytes]

    @property
    def port(self) -> int:
        return self.config.port

    def address(self, user: str | None = DEVICE_USER) -> BrokerAddress:
        password = PASSWORDS.get(user) if user else None
        return BrokerAddress("127.0.0.1", self.port, False, user, password)


def start_broker(directory: Path, extra_lines: list[str] | None = None) -> Broker:
    config = MosquittoConfig(directory, dict(PASSWORDS), extra_lines=extra_lines or [])
    try:
        argv = config.write()
    except BrokerUnavailableError as exc:
        broker_missing(str(exc))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(config.host, config.port, proc)
    return Broker(config, proc)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker")
    yield b
    b.proc.terminate()
    b.proc.wait(10)


def install_agent(root: Path, deadline_ms: float = DEADLINE_MS) -> tuple[Path, Path]:
    """A signed digits package installed as FEATURE (placed at the edge) in an agent's data
    directory: the agent serves it without a cloud. (data dir, trusted public key)."""
    from tierwise.package.install import install_package
    from tierwise.spec.tiers import Placement
    from tierwise.wire import Deployment, FeatureDeployment

    keys = make_keys(root / "keys")
    package = build_package(root / "pkg", keys.private, "digits-edge", 1)
    data_dir = root / "edge"
    packages = data_dir / "packages"
    install_package(package, packages / "digits-edge", [keys.public])
    feature = FeatureDeployment(
        package="digits-edge",
        version=1,
        sha256="0" * 64,  # what a cloud would have announced; unused for an installed package
        placement=Placement.EDGE,
        deadline_ms=deadline_ms,
    )
    deployment = Deployment(site=SITE, features={FEATURE: feature}, etag="local")
    (packages / "deployment.json").write_text(deployment.model_dump_json(), "utf-8")
    return data_dir, keys.public


def closed_cloud() -> str:
    """A cloud URL nothing listens on: the agent serves what is installed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class MqttAgent(AgentProcess):
    """`tierwise edge --mqtt URL` as a process; start() returns once it is subscribed."""

    def start(self) -> MqttAgent:
        super().start()
        assert self.proc is not None
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"agent exited ({self.proc.wait()}) before subscribing")
            if "answering MQTT on" in line:
                break
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self


def mqtt_agent(
    root: Path,
    broker_url: str,
    password: str | None,
    *extra: str,
    env: dict[str, str] | None = None,
) -> MqttAgent:
    data_dir, public = install_agent(root)
    args = ["--mqtt", broker_url, "--drain-timeout", "1", *extra]  # no cloud to flush to
    if password is not None:
        secret = root / "mqtt-password"
        secret.write_text(password)
        args += ["--mqtt-password-file", str(secret)]
    return MqttAgent(closed_cloud(), data_dir, public, tuple(args), env=env or {})


def write_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("tierwise test CA"))
        .issuer_name(name("tierwise test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o600)
    return paths
