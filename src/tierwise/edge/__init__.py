"""The edge agent: serves devices, escalates in time, stores and forwards, installs safely.

Modules, one idea each:

    agent.py        the agent and its lifecycle; wires everything below together
    api.py          the device-facing HTTP API (FastAPI): answers the agent's refusals
                    (tierwise.errors) as 404/422/503; its bodies are in tierwise/wire.py
    mqtt.py         devices over MQTT: the same predict, answers on the Response Topic;
                    mqtt_wire.py topics and bodies, mqtt_loop.py paho on the event loop,
                    mqtt_device.py the device-side client
    router.py       local / cloud / cascade routing by the deadline
    cloud_health.py circuit breaker: is the cloud worth waiting for right now
    link.py         the edge→cloud interface; http_link.py (real), memory_link.py (twin)
    outbox.py       durable store-and-forward queue (outbox_store.py: its SQLite file)
    uploader.py     batches with backoff and jitter from the outbox to the cloud
    deploy.py       follows the cloud's deployment; packages.py verifies/installs/loads
    metrics.py      counters per feature and version, Prometheus text
    feedback.py     per-feature summaries for the cloud's drift test, and their privacy filter
    upstream_bytes.py  what feedback costs the WAN beside uploading every escalated input
    field_sample.py the newest labelled rows per feature, on the site's disk, for retraining
    settings.py     EdgeSettings from options and TIERWISE_EDGE_* variables
    serve.py        uvicorn process with drain-on-SIGTERM; commands.py: `tierwise edge`
    device.py       a cheap device-side client, for simulators and load tests

Needs only the `edge` extra: no torch, scikit-learn or Flower (a test checks it).

The names below load on first use, so the CLI, which imports `commands` on every start, does
not pay for FastAPI and httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierwise.lazy import lazy_names

if TYPE_CHECKING:
    from tierwise.edge.agent import EdgeAgent
    from tierwise.edge.device import DeviceConnection
    from tierwise.edge.field_sample import FieldRows, load_field_sample
    from tierwise.edge.http_link import HttpCloudLink
    from tierwise.edge.lifecycle import AgentState
    from tierwise.edge.link import CloudLink
    from tierwise.edge.memory_link import InMemoryCloud, InMemoryCloudLink
    from tierwise.edge.outbox import Durability, Outbox
    from tierwise.edge.settings import EdgeSettings

__all__ = [
    "AgentState",
    "CloudLink",
    "DeviceConnection",
    "Durability",
    "EdgeAgent",
    "EdgeSettings",
    "FieldRows",
    "HttpCloudLink",
    "InMemoryCloud",
    "InMemoryCloudLink",
    "Outbox",
    "load_field_sample",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "EdgeAgent": "agent",
        "DeviceConnection": "device",
        "FieldRows": "field_sample",
        "load_field_sample": "field_sample",
        "HttpCloudLink": "http_link",
        "AgentState": "lifecycle",
        "CloudLink": "link",
        "InMemoryCloud": "memory_link",
        "InMemoryCloudLink": "memory_link",
        "Durability": "outbox",
        "Outbox": "outbox",
        "EdgeSettings": "settings",
    },
)
