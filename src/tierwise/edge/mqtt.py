"""Devices over MQTT: the agent, a client of the site's broker, answers requests it subscribes to.

A second device-facing adapter beside the HTTP API (api.py), over the same decision path:
each request goes to `EdgeAgent.predict` — router, deadline, cascade, outbox — exactly as a
POST does. Topics and bodies are in mqtt_wire.py; docs/edge.md shows a device.

Delivery (docs/edge.md, "Delivery semantics"):

- requests are received at QoS 1 on a persistent session (clean start off, a session
  expiry): the broker keeps what devices publish while the agent restarts and delivers it
  when the agent is back;
- a request is acknowledged (PUBACK) right behind its answer on the same connection, so a
  request acknowledged is a request answered: the broker handles a connection's packets in
  order, so by the time it takes the PUBACK it has routed the answer. An agent killed before
  both left gets the request again (DUP) and answers it again: at least once, duplicates
  possible around a crash, counted (`mqtt_redelivered`);
- answers go at QoS 0: an answer is worth something until its deadline (milliseconds), a
  device that was offline past it has fallen back already, and the answer is on record in
  the outbox either way. QoS 1 would cost a PUBACK from the broker per answer, to be read,
  matched and acted on: about a tenth of the agent's CPU per answer (docs/edge.md);
- a request that waited past its deadline (`sent_at` + `deadline_ms`) is answered `expired`,
  not run; one that cannot be read is answered `malformed`: nothing goes unanswered;
- while the agent drains, requests are left unacknowledged (the broker delivers them to
  the next run) rather than refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from tierwise.edge.agent import EdgeAgent
from tierwise.edge.mqtt_loop import LoopDriver, new_client, properties
from tierwise.edge.mqtt_properties import publish_properties
from tierwise.edge.mqtt_wire import (
    EXPIRED,
    MALFORMED,
    QUOTED_PAYLOAD,
    BrokerAddress,
    MqttCredentials,
    MqttRequest,
    answer_payload,
    error_payload,
    feature_of,
    request_filter,
    response_topic,
)
from tierwise.errors import RequestRefusedError, UsageError

log = logging.getLogger(__name__)

ERROR_NAMES = {404: "not_found", 422: "unprocessable", 503: "unavailable"}
COUNTERS = {
    "mqtt_requests": "MQTT requests received",
    "mqtt_answers": "MQTT requests answered 200",
    "mqtt_refused": "MQTT requests answered with a refusal (404, 422, 503)",
    "mqtt_malformed": "MQTT payloads that are not a request, answered 'malformed'",
    "mqtt_expired": "MQTT requests past their deadline, answered 'expired'",
    "mqtt_redelivered": "MQTT requests the broker delivered again (DUP)",
    "mqtt_deferred": "MQTT requests left to the broker while draining",
    "mqtt_connects": "MQTT connections made to the broker",
}


class MqttDevices:
    """The agent's MQTT adapter; `start()` after the agent's, `stop()` before the agent's."""

    def __init__(
        self,
        agent: EdgeAgent,
        broker: BrokerAddress,
        credentials: MqttCredentials,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        s = agent.settings
        self.agent = agent
        self.broker = broker
        self.credentials = credentials
        self.prefix = s.mqtt_topic_prefix
        self.client_id = s.mqtt_client_id or f"tierwise-edge-{s.site}"
        self.announce = announce
        self.counts = agent.metrics.adapter_counters(COUNTERS)
        self.subscribed = asyncio.Event()
        self._announced = False
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._driver: LoopDriver | None = None
        self._client: paho.Client | None = None
        self.last_refusal = ""

    async def start(self) -> None:
        s = self.agent.settings
        client = new_client(self.client_id, self.credentials, self.broker.tls, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        connect = properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = s.mqtt_session_expiry_s
        connect.ReceiveMaximum = s.mqtt_receive_maximum
        self._client = client
        self._driver = LoopDriver(
            client, self.broker, clean_start=False, connect_properties=connect
        )
        self.agent.adapter_views["mqtt"] = self.view
        try:
            await self._driver.connect()
        except OSError as exc:  # the broker may come up after the agent: keep trying
            log.warning("MQTT broker %s: %s; retrying", self.broker.url(), exc)
        self._driver.keep_connected()

    async def stop(self) -> None:
        """Leave new requests to the broker, finish those in hand, disconnect once their answers
        and acknowledgements are written (the session, with anything unanswered, stays at the
        broker)."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.agent.settings.drain_timeout_s)
        if self._driver is not None:
            await self._driver.close()

    def view(self) -> dict[str, Any]:
        return {
            "broker": self.broker.url(),
            "client_id": self.client_id,
            "subscribed": self.subscribed.is_set(),
            "request_topics": request_filter(self.prefix, self.agent.settings.site),
            "last_refusal": self.last_refusal,
            **self.counts,
        }

    # --- paho callbacks (on the event loop: see mqtt_loop.py) -------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: Any,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.last_refusal = str(reason)
            log.error("MQTT broker %s refused the agent: %s", self.broker.url(), reason)
            return
        self.counts["mqtt_connects"] += 1
        # Subscribe on every connect: a session the broker lost (expired, or a broker without
        # persistence restarted) holds no subscription; on a kept one this is a no-op.
        topic = request_filter(self.prefix, self.agent.settings.site)
        client.subscribe(topic, options=SubscribeOptions(qos=1))

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            self.last_refusal = ", ".join(str(r) for r in reasons)
            log.error("MQTT broker %s refused the subscription: %s", self.broker.url(), reasons)
            return
        self.subscribed.set()
        if not self._announced and self.announce is not None:
            self._announced = True
            topic = request_filter(self.prefix, self.agent.settings.site)
            self.announce(f"answering MQTT on {self.broker.url()} topic {topic}")

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        self.counts["mqtt_requests"] += 1
        if msg.dup:
            self.counts["mqtt_redelivered"] += 1
        if self._stopping or not self.agent.serving:
            self.counts["mqtt_deferred"] += 1  # not acknowledged: the broker keeps it
            return
        arrived = self.agent.clock.now()
        task = asyncio.get_running_loop().create_task(self._handle(msg, arrived))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- one request --------------------------------------------------------------------

    async def _handle(self, msg: paho.MQTTMessage, arrived: float) -> None:
        props = msg.properties
        reply_to: str | None = getattr(props, "ResponseTopic", None) if props else None
        correlation: bytes | None = getattr(props, "CorrelationData", None) if props else None
        feature = feature_of(msg.topic) or "unknown"
        site = self.agent.settings.site
        try:
            request = MqttRequest.model_validate_json(msg.payload)
        except ValidationError as exc:
            self.counts["mqtt_malformed"] += 1
            detail = _malformed_detail(exc, bytes(msg.payload))
            topic = reply_to or response_topic(self.prefix, site, feature)
            self._answer(msg, topic, correlation, error_payload(400, MALFORMED, detail, None))
            return
        cid = request.correlation_id
        topic = reply_to or response_topic(self.prefix, site, feature, request.client_id)
        if request.sent_at is not None:
            # The deadline counts from when the device sent it: time queued in the broker
            # (the agent restarting) is spent, as time queued in a busy agent is over HTTP.
            waited = max(self.agent.wall_clock.now() - request.sent_at, 0.0)
            arrived = self.agent.clock.now() - waited
            deadline_ms = request.deadline_ms or self.agent.deadline_ms(feature)
            if deadline_ms is not None and waited * 1000 > deadline_ms:
                self.counts["mqtt_expired"] += 1
                detail = f"waited {waited * 1000:.0f} ms for a {deadline_ms:.0f} ms deadline"
                self._answer(msg, topic, correlation, error_payload(504, EXPIRED, detail, cid))
                return
        try:
            answer = await self.agent.predict(feature, request, arrived)
        except RequestRefusedError as exc:
            if not self.agent.serving:  # draining: the next run answers it
                self.counts["mqtt_deferred"] += 1
                return
            self.counts["mqtt_refused"] += 1
            error = ERROR_NAMES.get(exc.status, "refused")
            self._answer(msg, topic, correlation, error_payload(exc.status, error, exc.detail, cid))
            return
        self.counts["mqtt_answers"] += 1
        self._answer(msg, topic, correlation, answer_payload(answer, cid))

    def _answer(
        self, msg: paho.MQTTMessage, topic: str, correlation: bytes | None, payload: bytes
    ) -> None:
        assert self._client is not None
        props = publish_properties(correlation)
        # Written with the rest of this loop turn's packets (mqtt_loop.py), not one by one; the
        # acknowledgement is queued behind the answer, so it cannot reach the broker first.
        info = self._client.publish(topic, payload, qos=0, properties=props)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            # Not connected: the request stays unacknowledged; the broker delivers it again.
            log.debug("MQTT answer on %s not sent (%s)", topic, info.rc)
            return
        if msg.qos > 0:
            self._client.ack(msg.mid, msg.qos)


def _malformed_detail(exc: ValidationError, payload: bytes) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    quoted = payload[:QUOTED_PAYLOAD].decode("utf-8", "replace")
    return f"not a request ({len(payload)} bytes): {where}: {first['msg']}; starts {quoted!r}"


def mqtt_devices(agent: EdgeAgent, announce: Callable[[str], None] | None = None) -> MqttDevices:
    """The MQTT adapter for the broker in the agent's settings (`mqtt_url`)."""
    s = agent.settings
    if s.mqtt_url is None:
        raise UsageError("no MQTT broker in the edge settings (mqtt_url)")
    broker = BrokerAddress.parse(s.mqtt_url)
    credentials = MqttCredentials(
        username=s.mqtt_username or broker.username,
        password=s.mqtt_password or broker.password,
        ca_file=s.mqtt_ca_file,
    )
    return MqttDevices(agent, broker, credentials, announce)
