"""The paho client the agent and devices run: its message dispatch shortcut keeps paho's rules."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as paho

from tierwise.edge.mqtt_loop import new_client
from tierwise.edge.mqtt_wire import MqttCredentials


def _message(topic: str) -> paho.MQTTMessage:
    message = paho.MQTTMessage(1, topic.encode())
    message.payload = b"{}"
    return message


def test_messages_go_to_on_message_and_per_topic_callbacks_still_win() -> None:
    client = new_client("dispatch", MqttCredentials(), tls=False)
    seen: list[tuple[str, str]] = []

    def record(name: str) -> Any:
        return lambda _client, _userdata, message: seen.append((name, message.topic))

    client.on_message = record("on_message")
    client._handle_on_message(_message("a/b"))  # what paho calls for each PUBLISH read
    client.message_callback_add("a/#", record("a"))
    client._handle_on_message(_message("a/c"))
    client._handle_on_message(_message("z"))
    assert seen == [("on_message", "a/b"), ("a", "a/c"), ("on_message", "z")]
