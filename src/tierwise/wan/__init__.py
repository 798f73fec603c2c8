"""An emulated WAN between edge and cloud: a fault-injecting TCP proxy on loopback."""

from tierwise.wan.capture import read_streams
from tierwise.wan.conditions import LossMode, Outage, OutageMode, WanConditions
from tierwise.wan.proxy import ProxyStats, WanProxy
from tierwise.wan.thread import ProxyThread

__all__ = [
    "LossMode",
    "Outage",
    "OutageMode",
    "ProxyStats",
    "ProxyThread",
    "WanConditions",
    "WanProxy",
    "read_streams",
]
