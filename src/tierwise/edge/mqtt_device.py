"""A device-side MQTT v5 client, for simulators, load tests and benchmarks (not the agent).

One connection per device process (devices multiplex over it): requests are published at
QoS 1 to `{prefix}/{site}/{feature}/request` with a Response Topic of the device's own
(`.../response/{client_id}`) and a fresh Correlation Data each; the answer with that
Correlation Data resolves `request()`. `on_answer` sees every answer, duplicates included.
Answers are subscribed to at QoS 0 (see `_on_connect`); requests go at QoS 1.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from tierwise.edge.mqtt_loop import LoopDriver, new_client
from tierwise.edge.mqtt_properties import publish_properties
from tierwise.edge.mqtt_wire import (
    DEFAULT_TOPIC_PREFIX,
    BrokerAddress,
    MqttCredentials,
    request_topic,
    response_topic,
)
from tierwise.errors import LinkError


class MqttDevice:
    """Publishes requests for a site's features and receives their answers."""

    def __init__(
        self,
        broker: BrokerAddress,
        site: str,
        client_id: str,
        credentials: MqttCredentials | None = None,
        prefix: str = DEFAULT_TOPIC_PREFIX,
    ) -> None:
        self.broker = broker
        self.site = site
        self.client_id = client_id
        self.prefix = prefix
        creds = credentials or MqttCredentials(broker.username, broker.password)
        self.client = new_client(client_id, creds, broker.tls)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.on_answer: Callable[[bytes, bytes], None] | None = None
        self._waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)
        self._reply_to: dict[str, str] = {}
        self._ready: asyncio.Future[None] | None = None
        self._driver: LoopDriver | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        """Connect and subscribe to this device's answers; LinkError when refused or down."""
        self._ready = asyncio.get_running_loop().create_future()
        self._driver = LoopDriver(self.client, self.broker)
        try:
            await self._driver.connect()
            async with asyncio.timeout(timeout):
                await self._ready
        except (OSError, TimeoutError) as exc:
            await self._driver.close()
            raise LinkError(f"MQTT broker {self.broker.url()}: {exc}") from exc

    def send(self, feature: str, body: bytes, correlation: bytes | None = None) -> bytes:
        """Publish a request (QoS 1); its Correlation Data (made up when not given)."""
        if correlation is None:
            correlation = next(self._ids).to_bytes(8, "big")
        reply_to = self._reply_to.get(feature)
        if reply_to is None:
            reply_to = self._reply_to[feature] = response_topic(
                self.prefix, self.site, feature, self.client_id
            )
        props = publish_properties(correlation, reply_to)
        topic = request_topic(self.prefix, self.site, feature)
        # Written with the rest of this loop turn's packets (mqtt_loop.py).
        info = self.client.publish(topic, body, qos=1, properties=props)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise LinkError(f"MQTT publish to {topic}: {paho.error_string(info.rc)}")
        return correlation

    async def request(self, feature: str, body: bytes, timeout: float) -> bytes:
        """Publish a request and wait for its answer (TimeoutError after `timeout` s)."""
        correlation = next(self._ids).to_bytes(8, "big")
        future = asyncio.get_running_loop().create_future()
        self._waiting[correlation] = future
        try:
            self.send(feature, body, correlation)
            async with asyncio.timeout(timeout):
                return await future  # type: ignore[no-any-return]
        finally:
            self._waiting.pop(correlation, None)

    async def close(self) -> None:
        if self._driver is not None:
            await self._driver.close()

    # --- paho callbacks --------------------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None
    ) -> None:
        if reason.is_failure:
            self._fail(f"refused: {reason}")
            return
        answers = response_topic(self.prefix, self.site, "+", self.client_id)
        # QoS 0: this client's session ends with its connection (clean start), and within one
        # connection MQTT never sends a message twice, so QoS 1 would buy no delivery, only
        # a PUBACK per answer (CPU on the device and the broker).
        client.subscribe(answers, options=SubscribeOptions(qos=0))

    def _on_subscribe(
        self, _c: paho.Client, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            self._fail(f"subscription refused: {reasons}")
        elif self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _fail(self, why: str) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(LinkError(f"MQTT broker {self.broker.url()} {why}"))

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        correlation = getattr(msg.properties, "CorrelationData", None) or b""
        payload = bytes(msg.payload)
        if self.on_answer is not None:
            self.on_answer(correlation, payload)
        future = self._waiting.pop(correlation, None)
        if future is not None and not future.done():
            future.set_result(payload)
