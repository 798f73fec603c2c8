"""What devices and the agent say over MQTT: topics, the request body, the answer, the broker URL.

    request   {prefix}/{site}/{feature}/request          the agent subscribes (QoS 1)
    answer    the request's MQTT v5 Response Topic, with its Correlation Data; else
              {prefix}/{site}/{feature}/response/{client_id}   (MQTT 3.1.1 devices: the
              `client_id` and `correlation_id` fields of the body say where and which)
              {prefix}/{site}/{feature}/response               (a request naming neither)

The request body is the HTTP one (`PredictRequest`: inputs, labels, stream) plus what HTTP
carries in its connection or headers: who to answer (3.1.1), and when the device sent it
(`sent_at`, Unix seconds) with an optional `deadline_ms` — a request that waited in the
broker past its deadline (the agent was restarting) is answered `expired`, not run.

Every answer has a `status`, as the HTTP answer would: 200 with the HTTP answer's fields
(outputs, answered_by, model, version, degraded, latency_ms, event_seq, stream, reason), or
an error (`error`: malformed, not_found, unprocessable, unavailable, expired; `detail` why).
This module needs no MQTT library: the device client and the agent's adapter share it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field

from tierwise.errors import UsageError
from tierwise.wire import Name, PredictRequest, PredictResponse

DEFAULT_TOPIC_PREFIX = "tierwise"
DEFAULT_MQTT_PORT = 1883
DEFAULT_MQTTS_PORT = 8883
EXPIRED = "expired"
MALFORMED = "malformed"
QUOTED_PAYLOAD = 200  # bytes of an undecodable payload quoted in its error answer


class MqttRequest(PredictRequest):
    """A device's request over MQTT: the HTTP body plus who to answer and since when."""

    correlation_id: str | None = Field(
        None, max_length=256, description="3.1.1 devices: echoed in the answer"
    )
    client_id: Name | None = Field(
        None, description="3.1.1 devices: the answer goes to .../response/{client_id}"
    )
    sent_at: float | None = Field(
        None, description="Unix time (s) the device sent it: the deadline counts from there"
    )
    deadline_ms: float | None = Field(
        None, gt=0, description="the answer's use-by (default: the feature's deployed deadline)"
    )


def request_topic(prefix: str, site: str, feature: str) -> str:
    return f"{prefix}/{site}/{feature}/request"


def request_filter(prefix: str, site: str) -> str:
    """What the agent subscribes to: every feature's request topic at its site."""
    return f"{prefix}/{site}/+/request"


def response_topic(prefix: str, site: str, feature: str, client_id: str | None = None) -> str:
    """The fallback answer topic (for 3.1.1 devices, or a v5 request without a Response Topic)."""
    base = f"{prefix}/{site}/{feature}/response"
    return base if client_id is None else f"{base}/{client_id}"


def feature_of(topic: str) -> str | None:
    """The feature named by a request topic, None when the topic is not one."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[-1] != "request":
        return None
    return parts[-2]


def answer_payload(answer: PredictResponse, correlation_id: str | None) -> bytes:
    """The 200 answer: the HTTP answer's fields plus `status` (and the 3.1.1 correlation id)."""
    # Spliced into pydantic's own JSON rather than dumped again by json: the hot path.
    extra = ',"status":200'
    if correlation_id is not None:
        extra += ',"correlation_id":' + json.dumps(correlation_id)
    return (answer.model_dump_json()[:-1] + extra + "}").encode()


def error_payload(status: int, error: str, detail: str, correlation_id: str | None) -> bytes:
    body: dict[str, Any] = {"status": status, "error": error, "detail": detail}
    if correlation_id is not None:
        body["correlation_id"] = correlation_id
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class BrokerAddress:
    """Where an MQTT broker listens, from a URL: mqtt://[user[:password]@]host[:port] or
    mqtts:// (TLS). A password in the URL is for tests and examples; the agent reads its own
    from a file or the environment (see docs/edge.md)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str, what: str = "--mqtt") -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise UsageError(f"{what} {url!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (DEFAULT_MQTTS_PORT if tls else DEFAULT_MQTT_PORT)
        except ValueError:
            raise UsageError(f"{what} {url!r}: the port is not a number in 0-65535") from None
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, tls, username, password)

    def url(self) -> str:
        """The URL without credentials (safe to print)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class MqttCredentials:
    """How a client proves itself to the broker: a username and password, TLS roots."""

    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None  # mqtts: the CA that signed the broker's certificate
