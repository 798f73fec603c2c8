"""The MQTT contract without a broker: broker URLs, topics, and the answer's fields."""

from __future__ import annotations

import json

import pytest

from tierwise.edge.mqtt_wire import (
    BrokerAddress,
    MqttRequest,
    answer_payload,
    error_payload,
    feature_of,
    request_filter,
    request_topic,
    response_topic,
)
from tierwise.errors import UsageError
from tierwise.wire import PredictResponse


def test_broker_urls() -> None:
    plain = BrokerAddress.parse("mqtt://gw.local")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("gw.local", 1883, False, None)
    tls = BrokerAddress.parse("mqtts://dev%40site:p%2Fw@10.0.0.2:9000")
    assert (tls.port, tls.tls, tls.username, tls.password) == (9000, True, "dev@site", "p/w")
    assert tls.url() == "mqtts://10.0.0.2:9000"  # printable: no credentials
    assert BrokerAddress.parse("mqtts://h").port == 8883
    for bad in ("http://h:1883", "mqtt://", "h:1883", "mqtt://h:99999"):
        with pytest.raises(UsageError, match="--mqtt"):
            BrokerAddress.parse(bad)


def test_topics_name_site_feature_and_who_to_answer() -> None:
    assert request_topic("tierwise", "plant-a", "digits") == "tierwise/plant-a/digits/request"
    assert request_filter("tierwise", "plant-a") == "tierwise/plant-a/+/request"
    assert response_topic("tw", "s", "f") == "tw/s/f/response"
    assert response_topic("tw", "s", "f", "dev-1") == "tw/s/f/response/dev-1"
    assert feature_of("a/b/tierwise/plant-a/digits/request") == "digits"
    assert feature_of("tierwise/plant-a/digits/response") is None


def test_answers_carry_the_http_fields_a_status_and_the_311_correlation() -> None:
    answer = PredictResponse(
        outputs=[[0.25, 0.75]], answered_by="edge", model="m", version=2, degraded=False,
        latency_ms=1.5, event_seq=7, stream="s", reason="confident",
    )  # fmt: skip
    body = json.loads(answer_payload(answer, 'id "1"'))
    assert body == {**answer.model_dump(), "status": 200, "correlation_id": 'id "1"'}
    assert "correlation_id" not in json.loads(answer_payload(answer, None))
    error = json.loads(error_payload(504, "expired", "late", None))
    assert error == {"status": 504, "error": "expired", "detail": "late"}


def test_a_request_is_the_http_body_plus_who_and_when() -> None:
    request = MqttRequest.model_validate_json(
        '{"inputs": [[1, 2]], "client_id": "dev-1", "correlation_id": "c", "sent_at": 1.5}'
    )
    assert (request.client_id, request.sent_at, request.deadline_ms) == ("dev-1", 1.5, None)
    for bad in ('{"inputs": [[1]], "client_id": "a/#"}', '{"inputs": [[1]], "deadline_ms": 0}'):
        with pytest.raises(ValueError, match="validation error"):
            MqttRequest.model_validate_json(bad)
