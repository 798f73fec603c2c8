"""MQTT's framing in the plan: the bytes it counts are those paho puts on the wire, and they
are added to the WAN figures of a cloud-placed feature only."""

from __future__ import annotations

from typing import Any

import numpy as np
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from tests.small_specs import MINIMAL, varied

from tierwise.edge.mqtt_loop import properties
from tierwise.edge.mqtt_wire import request_topic, response_topic
from tierwise.plan.estimate import candidate_table
from tierwise.plan.protocol import CLIENT_ID_CHARS, CORRELATION_BYTES, mqtt_exchange_overhead
from tierwise.plan.table import CLOUD
from tierwise.spec import Spec
from tierwise.spec.units import SECONDS_PER_MONTH


def _wire_bytes(site: str, feature: str, payload: int, result: int) -> int:
    """What paho encodes for one exchange as the tierwise responder makes it: the request
    PUBLISH (v5, QoS 1, Response Topic, Correlation Data) and its PUBACK, the answer PUBLISH
    (QoS 0, Correlation Data)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    packets: list[bytes] = []

    def capture(_command: int, packet: bytes, *_args: Any, **_kwargs: Any) -> int:
        packets.append(bytes(packet))
        return 0

    client._packet_queue = capture  # type: ignore[method-assign]
    client._sock = object()  # type: ignore[assignment]  # "connected": only encoding happens
    reply_to = response_topic("tierwise", site, feature, "c" * CLIENT_ID_CHARS)
    ask = properties(PacketTypes.PUBLISH)
    ask.ResponseTopic = reply_to
    ask.CorrelationData = b"\x00" * CORRELATION_BYTES
    answer = properties(PacketTypes.PUBLISH)
    answer.CorrelationData = b"\x00" * CORRELATION_BYTES
    topic = request_topic("tierwise", site, feature)
    client._send_publish(1, topic.encode(), b"x" * payload, 1, properties=ask)
    client._send_puback(1)
    client._send_publish(0, reply_to.encode(), b"y" * result, 0, properties=answer)
    client._sock = None
    return sum(map(len, packets))


@pytest.mark.parametrize(("payload", "result"), [(10, 20), (100, 100), (4096, 300), (20_000, 5)])
def test_framing_is_what_paho_puts_on_the_wire(payload: int, result: int) -> None:
    site, feature = "plant-north", "vibration-anomaly"
    wire = _wire_bytes(site, feature, payload, result)
    counted = mqtt_exchange_overhead(len(site), len(feature), payload, result)
    assert float(counted) == wire - payload - result


def test_mqtt_framing_counts_in_the_wan_figures_of_cloud_placements_only() -> None:
    def table(protocol: str) -> Any:
        return candidate_table(Spec.model_validate(varied(MINIMAL, features__0__protocol=protocol)))

    http, mqtt = table("http"), table("mqtt")
    cloud = http.placement[http.cand] == CLOUD
    assert cloud.any()
    assert (~cloud).any()
    spec = Spec.model_validate(MINIMAL)
    feature, devices = spec.features[0], spec.sites[0].counts["device"]
    framing = float(mqtt_exchange_overhead(len("s1"), len("f"), feature.payload, feature.result))
    assert 150 < framing < 200  # next to a 4 KB payload: a few percent
    extra_bps = 8 * feature.rate * devices * feature.peak_factor * framing
    np.testing.assert_allclose(mqtt.wan_bps[cloud] - http.wan_bps[cloud], extra_bps)
    extra_month = feature.rate * devices * framing * SECONDS_PER_MONTH
    np.testing.assert_allclose(mqtt.wan_bytes[cloud] - http.wan_bytes[cloud], extra_month)
    np.testing.assert_array_equal(mqtt.wan_bps[~cloud], http.wan_bps[~cloud])
