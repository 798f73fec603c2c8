"""Devices over MQTT against real Mosquitto brokers and a real `tierwise edge --mqtt` process.

The round trips use the machine's broker on 127.0.0.1:1883 (anonymous, as `make test` starts
it); what needs a broker of its own — the config `tierwise up` writes (no anonymous access),
a kill of the agent with requests queued — starts one on a free port.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tierwise.edge.field_sample import load_field_sample
from tierwise.edge.mqtt_device import MqttDevice
from tierwise.edge.mqtt_wire import (
    BrokerAddress,
    MqttCredentials,
    request_topic,
    response_topic,
)
from tierwise.errors import LinkError

from .mqtt_support import (
    AGENT_USER,
    DEVICE_USER,
    PASSWORDS,
    Broker,
    MqttAgent,
    broker,
    mqtt_agent,
    start_broker,
    system_broker,
    write_tls_files,
)
from .support import FEATURE, SITE, digits

__all__ = ["broker"]  # the fixture, used by name

PREFIX = f"tierwise-test-{uuid.uuid4().hex[:8]}"  # runs sharing the machine's broker stay apart


@pytest.fixture(scope="module")
def shared_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MqttAgent, str]]:
    """An agent on the machine's broker, under a topic prefix and client id of this run."""
    address = system_broker()
    env = {
        "TIERWISE_EDGE_MQTT_TOPIC_PREFIX": PREFIX,
        "TIERWISE_EDGE_MQTT_CLIENT_ID": f"{PREFIX}-agent",
        "TIERWISE_EDGE_MQTT_SESSION_EXPIRY_S": "30",  # the broker forgets this run soon
    }
    agent = mqtt_agent(tmp_path_factory.mktemp("mqtt-agent"), address.url(), None, env=env)
    agent.start()
    yield agent, address.url()
    assert agent.terminate() == 0


def _device(url: str, client_id: str) -> MqttDevice:
    return MqttDevice(BrokerAddress.parse(url), SITE, client_id, prefix=PREFIX)


def _row(i: int = 0, **extra: object) -> bytes:
    x, y = digits()
    return json.dumps({"inputs": [x[i].tolist()], "labels": [int(y[i])], **extra}).encode()


def test_round_trip_answers_on_the_response_topic_with_the_http_fields(
    shared_agent: tuple[MqttAgent, str],
) -> None:
    agent, url = shared_agent

    async def scenario() -> list[dict[str, object]]:
        device = _device(url, f"{PREFIX}-dev")
        await device.connect()
        try:
            return [json.loads(await device.request(FEATURE, _row(i), 10)) for i in range(20)]
        finally:
            await device.close()

    answers = asyncio.run(scenario())
    over_http = httpx.post(
        f"{agent.url}/v1/predict/{FEATURE}",
        content=_row(0),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert over_http.status_code == 200
    http_answer = over_http.json()
    for answer in answers:
        assert answer["status"] == 200
        assert answer["answered_by"] == "edge"
        assert set(answer) - {"status"} == set(http_answer)
        assert answer["event_seq"] is not None  # recorded in the outbox before answered
    # The same model, the same answer: one decision path for both protocols.
    assert answers[0]["outputs"][0] == pytest.approx(http_answer["outputs"][0])
    seqs = [a["event_seq"] for a in answers]
    assert len(set(seqs)) == len(seqs)
    state = agent.state()
    assert state["adapters"]["mqtt"]["mqtt_answers"] >= 20


def test_labelled_rows_over_mqtt_reach_the_field_sample_as_over_http(
    shared_agent: tuple[MqttAgent, str],
) -> None:
    """The MQTT path feeds the site's field sample too (one decision path): the rows appear,
    labelled and in order, in the file the agent writes while serving."""
    agent, url = shared_agent
    x, y = digits()
    mine = range(1500, 1520)  # rows no other test sends

    async def scenario() -> None:
        device = _device(url, f"{PREFIX}-labeller")
        await device.connect()
        try:
            for i in mine:
                answer = json.loads(await device.request(FEATURE, _row(i), 10))
                assert answer["status"] == 200
        finally:
            await device.close()

    asyncio.run(scenario())
    path = agent.data_dir / "field" / f"{FEATURE}.npz"
    deadline = time.monotonic() + 30  # written every 5 s at most
    while True:
        sample = load_field_sample(path) if path.exists() else None
        if sample is not None and any((sample.x == x[1519]).all(axis=1)):
            break
        assert time.monotonic() < deadline, "the MQTT rows never reached the field sample"
        time.sleep(0.2)
    start = int(np.flatnonzero((sample.x == x[1500]).all(axis=1))[0])
    np.testing.assert_array_equal(sample.x[start : start + 20], x[1500:1520])
    assert sample.y[start : start + 20].tolist() == y[1500:1520].tolist()


def test_mqtt_311_device_is_answered_on_the_fallback_topic(
    shared_agent: tuple[MqttAgent, str],
) -> None:
    _agent, url = shared_agent
    address = BrokerAddress.parse(url)
    received: queue.Queue[paho.MQTTMessage] = queue.Queue()
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{PREFIX}-old",
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    client.on_message = lambda _c, _u, msg: received.put(msg)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        answers = response_topic(PREFIX, SITE, FEATURE, "old-device")
        client.subscribe(answers, qos=1)
        assert subscribed.wait(10)
        body = _row(3, client_id="old-device", correlation_id="req-42")
        client.publish(request_topic(PREFIX, SITE, FEATURE), body, qos=1).wait_for_publish(5)
        msg = received.get(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()
    assert msg.topic == answers
    answer = json.loads(msg.payload)
    assert answer["status"] == 200
    assert answer["correlation_id"] == "req-42"
    assert answer["outputs"]


def test_the_documented_paho_device_gets_its_answer(shared_agent: tuple[MqttAgent, str]) -> None:
    """docs/edge.md's Python device, as a newcomer pastes it (on this run's topic prefix)."""
    doc = (Path(__file__).parents[2] / "docs" / "edge.md").read_text("utf-8")
    section = doc.split("## Devices over MQTT", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"tierwise/', f'"{PREFIX}/')  # f"tierwise/... too
    code = code.replace('"press-7"', f'"{PREFIX}-press-7"')
    assert code.count(PREFIX) >= 4, "the example's topics moved: update this test"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "'status': 200" in run.stdout
    assert "'answered_by': 'edge'" in run.stdout


def test_malformed_and_expired_requests_get_error_answers_and_the_agent_keeps_serving(
    shared_agent: tuple[MqttAgent, str],
) -> None:
    agent, url = shared_agent
    before = agent.state()["adapters"]["mqtt"]

    async def scenario() -> list[dict[str, object]]:
        device = _device(url, f"{PREFIX}-fuzz")
        await device.connect()
        try:
            answers = []
            for size in (1, 17, 300, 5000):
                junk = os.urandom(size)
                answers.append(json.loads(await device.request(FEATURE, junk, 10)))
            answers.append(json.loads(await device.request(FEATURE, b'{"inputs": "x"}', 10)))
            old = _row(1, sent_at=time.time() - 60, deadline_ms=500)
            answers.append(json.loads(await device.request(FEATURE, old, 10)))
            answers.append(json.loads(await device.request("no-such-feature", _row(), 10)))
            answers.append(json.loads(await device.request(FEATURE, _row(2), 10)))
            return answers
        finally:
            await device.close()

    *junk, bad_inputs, expired, unknown, fine = asyncio.run(scenario())
    for answer in [*junk, bad_inputs]:
        assert answer["status"] == 400
        assert answer["error"] == "malformed"
    assert "inputs" in str(bad_inputs["detail"])
    assert expired["status"] == 504
    assert expired["error"] == "expired"
    assert unknown["status"] == 404
    assert unknown["error"] == "not_found"
    assert fine["status"] == 200
    after = agent.state()["adapters"]["mqtt"]
    assert after["mqtt_malformed"] - before["mqtt_malformed"] == 5
    assert after["mqtt_expired"] - before["mqtt_expired"] == 1
    metrics = httpx.get(f"{agent.url}/metrics", timeout=5).text
    assert f"tierwise_edge_mqtt_malformed_total {after['mqtt_malformed']}" in metrics
    assert agent.state()["state"] == "serving"


def test_broker_config_refuses_anonymous_and_wrong_passwords(broker: Broker) -> None:
    async def connect(address: BrokerAddress) -> None:
        device = MqttDevice(address, SITE, f"probe-{uuid.uuid4().hex[:6]}")
        await device.connect(timeout=5)
        await device.close()

    with pytest.raises(LinkError, match="refused"):
        asyncio.run(connect(broker.address(user=None)))
    wrong = BrokerAddress("127.0.0.1", broker.port, False, DEVICE_USER, "not-the-password")
    with pytest.raises(LinkError, match="refused"):
        asyncio.run(connect(wrong))
    asyncio.run(connect(broker.address(DEVICE_USER)))
    config = broker.config.conf_path.read_text()
    assert "allow_anonymous false" in config
    assert oct(broker.config.password_path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_agent_and_device_over_tls(tmp_path: Path) -> None:
    """mqtts://: the broker's certificate checked against --mqtt-ca-file, passwords inside TLS."""
    ca, cert, key = write_tls_files(tmp_path / "tls")
    lines = [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
    tls_broker = start_broker(tmp_path / "broker", lines)
    try:
        url = f"mqtts://{AGENT_USER}@127.0.0.1:{tls_broker.port}"
        agent = mqtt_agent(tmp_path, url, PASSWORDS[AGENT_USER], "--mqtt-ca-file", str(ca))
        agent.start()
        try:
            address = BrokerAddress("127.0.0.1", tls_broker.port, True, DEVICE_USER)
            credentials = MqttCredentials(DEVICE_USER, PASSWORDS[DEVICE_USER], ca)

            async def ask() -> dict[str, object]:
                device = MqttDevice(address, SITE, "tls-device", credentials)
                await device.connect()
                try:
                    return dict(json.loads(await device.request(FEATURE, _row(5), 10)))
                finally:
                    await device.close()

            answer = asyncio.run(ask())
            assert answer["status"] == 200
            assert agent.state()["adapters"]["mqtt"]["broker"].startswith("mqtts://")

            async def untrusting() -> None:  # the system's CAs do not know this broker
                device = MqttDevice(address, SITE, "tls-naive", MqttCredentials(DEVICE_USER))
                await device.connect(timeout=5)

            with pytest.raises(LinkError, match="CERTIFICATE_VERIFY_FAILED"):
                asyncio.run(untrusting())
        finally:
            assert agent.terminate() == 0
    finally:
        tls_broker.proc.terminate()
        tls_broker.proc.wait(10)


# --- 10,000 requests, the agent SIGKILLed midway -----------------------------------------

TOTAL = 10_000
KILL_AT = 3_000  # answers seen before the agent is killed
QUEUED = 2_000  # requests published while the agent is down
WINDOW = 128  # requests a device keeps in flight otherwise
LONG_MS, SHORT_MS = 60_000.0, 1.0  # while down, every other request has a deadline it misses


@pytest.mark.slow
def test_sigkill_midway_every_request_is_answered_or_expired(
    broker: Broker, tmp_path: Path
) -> None:
    agent = mqtt_agent(
        tmp_path, f"mqtt://{AGENT_USER}@127.0.0.1:{broker.port}", PASSWORDS[AGENT_USER]
    )
    agent.start()
    answers: dict[bytes, list[dict[str, object]]] = {}
    short: set[bytes] = set()
    restart_s = 0.0

    async def scenario() -> None:
        nonlocal restart_s
        device = MqttDevice(broker.address(), SITE, "press-1")
        await device.connect()
        sent = 0
        done, killed = asyncio.Event(), asyncio.Event()
        window_open = True

        def send(deadline_ms: float) -> None:
            nonlocal sent
            body = _row(sent % 1000, sent_at=time.time(), deadline_ms=deadline_ms)
            correlation = device.send(FEATURE, body)
            if deadline_ms == SHORT_MS:
                short.add(correlation)
            sent += 1

        def on_answer(correlation: bytes, payload: bytes) -> None:
            first = correlation not in answers
            answers.setdefault(correlation, []).append(json.loads(payload))
            if len(answers) >= KILL_AT:
                killed.set()
            if first and window_open and sent < TOTAL:
                send(LONG_MS)
            if len(answers) == TOTAL:
                done.set()

        device.on_answer = on_answer
        for _ in range(WINDOW):
            send(LONG_MS)
        await killed.wait()
        window_open = False
        agent.kill()  # SIGKILL: nothing is drained, answers in flight are lost with it
        for i in range(QUEUED):
            send(SHORT_MS if i % 2 == 0 else LONG_MS)
        started = time.monotonic()
        await asyncio.to_thread(agent.start)
        restart_s = time.monotonic() - started
        window_open = True
        for _ in range(WINDOW):
            send(LONG_MS)
        async with asyncio.timeout(120):
            await done.wait()
        await asyncio.sleep(0.5)  # late duplicates, if any, are counted too
        await device.close()

    started = time.monotonic()
    try:
        asyncio.run(scenario())
    finally:
        state = agent.state()["adapters"]["mqtt"]
        assert agent.terminate() == 0
    elapsed = time.monotonic() - started
    first = {c: got[0] for c, got in answers.items()}
    expired = [c for c, a in first.items() if a.get("error") == "expired"]
    ok = [c for c, a in first.items() if a["status"] == 200]
    duplicates = sum(len(got) - 1 for got in answers.values())
    print(
        f"\n{TOTAL} requests over MQTT, agent SIGKILLed after {KILL_AT} answers and restarted "
        f"in {restart_s:.1f} s with {QUEUED} published meanwhile, {elapsed:.1f} s in all: "
        f"{len(ok)} answered, {len(expired)} answered expired, {TOTAL - len(answers)} lost; "
        f"{duplicates} duplicate answers (redelivered after the kill; agent counted "
        f"{state['mqtt_redelivered']} redeliveries since restart)"
    )
    assert len(answers) == TOTAL  # none lost
    assert len(ok) + len(expired) == TOTAL
    assert set(expired) == short  # exactly what missed its deadline while the agent was down
    # At least once: only what the agent had in hand when killed can be answered twice.
    assert duplicates <= agent_receive_maximum()


def agent_receive_maximum() -> int:
    from tierwise.edge.settings import DEFAULT_MQTT_RECEIVE_MAXIMUM

    return DEFAULT_MQTT_RECEIVE_MAXIMUM
