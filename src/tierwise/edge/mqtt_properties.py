"""paho's MQTT v5 properties with its lookup tables built once: the same class, cheaper per message.

paho-mqtt's `Properties` builds its tables of property names and types in every instance's
constructor, and finds a property by walking its 27 names (a `str.replace` each) on every
set, clear, pack and unpack: ~8 µs to make one, ~20 µs more to read a request's Response
Topic and Correlation Data, ~9 µs to pack them. Per answer the agent pays that for the
request and its answer, the device client for its request and the answer: a sixth of the
agent's CPU per MQTT answer, a third of the device's.

`QuickProperties` is paho's class with paho's own tables, taken from a paho instance once,
and dictionary lookups in place of the walks. Reading and writing each property's bytes
stays paho's (`readProperty`, `writeProperty`, `VariableByteIntegers`), and so do the
checks of values that paho checks; tests/edge/test_mqtt_properties.py holds it to paho's
own class on random property sets and bytes. `install_quick_properties()` has paho's packet
decoder (`paho.mqtt._packet`, paho >= 2.2) build these for the packets it receives; the
adapter and the device client build them for what they publish (`publish_properties`).
"""

from __future__ import annotations

from typing import Any

import paho.mqtt._packet as paho_packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

__all__ = ["QuickProperties", "install_quick_properties", "publish_properties"]

_PAHO = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
_NAMES: dict[str, int] = _PAHO.names  # "Response Topic" -> 8, as in every paho instance
# paho names a property in attributes by its name without spaces ("ResponseTopic").
_IDENT = {name.replace(" ", ""): ident for name, ident in _NAMES.items()}
_SPACED = {ident: name for name, ident in _NAMES.items()}
_MULTIPLE = frozenset(name for name in _IDENT if _PAHO.allowsMultiple(name))  # type: ignore[no-untyped-call]
# Names whose values paho's __setattr__ checks (ranges, 0 or 1) or accumulates (the
# multiples): set through paho's own __setattr__, as are names it refuses.
_CHECKED = _MULTIPLE | {
    "ReceiveMaximum",
    "TopicAlias",
    "TopicAliasMaximum",
    "MaximumPacketSize",
    "SubscriptionIdentifier",
    "RequestResponseInformation",
    "RequestProblemInformation",
    "PayloadFormatIndicator",
}
# pack() writes properties in the order of paho's names: (attribute, identifier, type).
_ORDER = [(name, ident, _PAHO.properties[ident][0]) for name, ident in _IDENT.items()]


class QuickProperties(Properties):
    """paho's `Properties`, its tables shared by every instance and looked up by dictionary."""

    types = _PAHO.types
    names = _NAMES
    properties = _PAHO.properties

    def __init__(self, packetType: int) -> None:  # noqa: N803 (paho's name)
        object.__setattr__(self, "packetType", packetType)

    def __setattr__(self, name: str, value: Any) -> None:
        compressed = name.replace(" ", "")
        ident = _IDENT.get(compressed)
        if (
            ident is None
            or compressed in _CHECKED
            or self.packetType not in self.properties[ident][1]
        ):
            # paho's own checks: its errors, its accumulation of the multiples
            super().__setattr__(name, value)  # type: ignore[no-untyped-call]
        else:
            object.__setattr__(self, compressed, value)

    def allowsMultiple(self, compressedName: str) -> bool:  # noqa: N802,N803 (paho's names)
        return compressedName in _MULTIPLE

    def getIdentFromName(self, compressedName: str) -> int:  # noqa: N802,N803
        return _IDENT.get(compressedName, -1)

    def getNameFromIdent(self, identifier: int) -> str | None:  # noqa: N802
        return _SPACED.get(identifier)

    def isEmpty(self) -> bool:  # noqa: N802
        return not any(name in _IDENT for name in self.__dict__)

    def clear(self) -> None:
        for name in [name for name in self.__dict__ if name in _IDENT]:
            delattr(self, name)

    def pack(self) -> bytes:
        present = self.__dict__
        buffer = b""
        for name, ident, kind in _ORDER:
            if name in present:
                values = present[name] if name in _MULTIPLE else (present[name],)
                for value in values:
                    buffer += self.writeProperty(ident, kind, value)  # type: ignore[no-untyped-call]
        return VariableByteIntegers.encode(len(buffer)) + buffer  # type: ignore[no-any-return,no-untyped-call]


def install_quick_properties() -> None:
    """Have paho's packet decoder build `QuickProperties` for the packets it receives."""
    paho_packet.Properties = QuickProperties  # type: ignore[attr-defined]


def publish_properties(
    correlation: bytes | None, response_topic: str | None = None
) -> QuickProperties:
    """PUBLISH properties with Correlation Data and a Response Topic (each when given).

    Set without paho's per-name checks: neither property has a value check, and both
    values are of the type the property takes (binary data, a string).
    """
    props = QuickProperties(PacketTypes.PUBLISH)
    if correlation is not None:
        object.__setattr__(props, "CorrelationData", correlation)
    if response_topic is not None:
        object.__setattr__(props, "ResponseTopic", response_topic)
    return props
