"""The broker `tierwise up --protocol mqtt` writes for a site: who may log in, and how."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tierwise.errors import UsageError
from tierwise.up.broker import BrokerUnavailableError, MosquittoConfig, SiteBroker, find_program

ROOT = Path(__file__).resolve().parents[2]


def test_config_refuses_anonymous_clients_and_keeps_what_it_queues(tmp_path: Path) -> None:
    config = MosquittoConfig(tmp_path, {"edge-a": "pw-1", "devices-a": "pw-2"})
    try:
        argv = config.write()
    except BrokerUnavailableError as exc:  # make setup installs Mosquitto
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Mosquitto needed under CI: {exc}")
        pytest.skip(str(exc))
    assert argv[-2:] == ["-c", str(config.conf_path)]
    lines = config.conf_path.read_text().splitlines()
    assert f"listener {config.port} 127.0.0.1" in lines
    assert "allow_anonymous false" in lines
    assert f"password_file {config.password_path}" in lines
    assert "max_queued_messages 1000000" in lines  # Mosquitto's 1,000 drops silently
    assert "set_tcp_nodelay true" in lines
    users = dict(line.split(":", 1) for line in config.password_path.read_text().splitlines())
    assert set(users) == {"edge-a", "devices-a"}
    assert "pw-1" not in users["edge-a"]  # hashed
    for path in (config.conf_path, config.password_path):
        assert path.stat().st_mode & 0o777 == 0o600


def test_the_agent_gets_its_password_in_a_file_not_argv(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    broker = SiteBroker("mqtt://127.0.0.1:1", "edge-a", secret, "devices-a", "device-pw")
    args = broker.agent_args()
    assert args == [
        "--mqtt", "mqtt://127.0.0.1:1", "--mqtt-username", "edge-a",
        "--mqtt-password-file", str(secret),
    ]  # fmt: skip
    assert broker.device_config("a")["password"] == "device-pw"


def test_a_missing_mosquitto_says_how_to_get_one() -> None:
    with pytest.raises(BrokerUnavailableError, match="apt-get install mosquitto"):
        find_program(("no-such-mosquitto", "/nonexistent/mosquitto"))


def test_mqtt_broker_needs_protocol_mqtt() -> None:
    from tierwise.up.commands import up

    spec = ROOT / "examples" / "camera.yaml"
    with pytest.raises(UsageError, match="--mqtt-broker: only with --protocol mqtt"):
        up(spec, mqtt_broker="mqtt://broker.local")
    with pytest.raises(UsageError, match="--protocol 'amqp'"):
        up(spec, protocol="amqp")
