"""QuickProperties is paho's Properties, faster: the same bytes, values and errors, held to
paho's own class on random property sets, random setting sequences and random bytes."""

from __future__ import annotations

import struct
from functools import partial
from typing import Any

import paho.mqtt._packet as paho_packet
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tierwise.edge.mqtt_properties import (
    QuickProperties,
    install_quick_properties,
    publish_properties,
)

PAHO = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
NAMES = {name.replace(" ", ""): ident for name, ident in PAHO.names.items()}
PACKET_TYPES = [PacketTypes.WILLMESSAGE, *range(PacketTypes.CONNECT, PacketTypes.AUTH + 1)]
# MQTT strings may not hold U+0000, U+FEFF or surrogates: paho refuses them when reading.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"))


def values_of(kind: str) -> st.SearchStrategy[Any]:
    """Values of a property type, sometimes out of the range paho accepts."""
    return {
        "Byte": st.integers(0, 255),
        "Two Byte Integer": st.integers(0, 65535),
        "Four Byte Integer": st.integers(0, 2**32 - 1),
        "Variable Byte Integer": st.integers(0, 268_435_455),
        "Binary Data": st.binary(max_size=40),
        "UTF-8 Encoded String": TEXT,
        "UTF-8 String Pair": st.tuples(TEXT, TEXT),
    }[kind]


@st.composite
def settings_of(draw: st.DrawFn) -> tuple[int, list[tuple[str, Any]]]:
    """A packet type and a sequence of (attribute, value) to set, applicable or not."""
    names = draw(st.lists(st.sampled_from(sorted(NAMES)), min_size=1, max_size=6))
    # Mostly a packet type the first property applies to (else paho refuses them all).
    applies = PAHO.properties[NAMES[names[0]]][1]
    packet_type = draw(st.sampled_from(applies) | st.sampled_from(PACKET_TYPES))
    steps = []
    for name in names:
        kind = PAHO.types[PAHO.properties[NAMES[name]][0]]
        spaced = draw(st.booleans())  # paho takes "Response Topic" as well as "ResponseTopic"
        attribute = next(n for n in PAHO.names if n.replace(" ", "") == name) if spaced else name
        steps.append((attribute, draw(values_of(kind))))
    if draw(st.booleans()):
        steps.append(("NotAProperty", 1))
    return packet_type, steps


def outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except Exception as exc:
        return (type(exc), str(exc))


def props_of(p: Properties) -> dict[str, Any]:
    return {k: v for k, v in vars(p).items() if k in NAMES}


@settings(max_examples=300, deadline=None)
@given(settings_of())
def test_setting_and_packing_match_paho(case: tuple[int, list[tuple[str, Any]]]) -> None:
    packet_type, steps = case
    paho, quick = Properties(packet_type), QuickProperties(packet_type)  # type: ignore[no-untyped-call]
    for name, value in steps:
        assert outcome(partial(setattr, quick, name, value)) == outcome(
            partial(setattr, paho, name, value)
        )
    assert props_of(quick) == props_of(paho)
    assert (str(quick), quick.json(), quick.isEmpty()) == (str(paho), paho.json(), paho.isEmpty())  # type: ignore[no-untyped-call]
    packed = paho.pack()  # type: ignore[no-untyped-call]
    assert quick.pack() == packed
    read_paho, read_quick = Properties(packet_type), QuickProperties(packet_type)  # type: ignore[no-untyped-call]
    assert outcome(lambda: read_quick.unpack(packed)[1]) == outcome(
        lambda: read_paho.unpack(packed)[1]  # type: ignore[no-untyped-call]
    )
    assert props_of(read_quick) == props_of(read_paho)
    read_quick.clear()
    assert read_quick.isEmpty()
    assert not props_of(read_quick)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PACKET_TYPES), st.binary(max_size=60))
def test_reading_any_bytes_matches_paho(packet_type: int, data: bytes) -> None:
    paho, quick = Properties(packet_type), QuickProperties(packet_type)  # type: ignore[no-untyped-call]
    assert outcome(lambda: quick.unpack(data)[1]) == outcome(lambda: paho.unpack(data)[1])  # type: ignore[no-untyped-call]
    assert props_of(quick) == props_of(paho)


def test_paho_decodes_received_packets_into_quick_properties() -> None:
    install_quick_properties()
    props = publish_properties(b"\x00\x07", "tierwise/plant-a/digits/response/dev-1")
    topic = b"tierwise/plant-a/digits/request"
    packet = struct.pack("!H", len(topic)) + topic + struct.pack("!H", 9) + props.pack() + b"{}"
    decoded = paho_packet.decode_publish(0x32, packet, MQTTProtocolVersion.MQTTv5)
    assert isinstance(decoded.properties, QuickProperties)
    assert decoded.properties.CorrelationData == b"\x00\x07"
    assert decoded.properties.ResponseTopic == "tierwise/plant-a/digits/response/dev-1"
    assert (decoded.mid, decoded.payload) == (9, b"{}")
