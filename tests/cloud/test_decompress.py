"""gzip request bodies: inflated within the body limit, refused clearly when they are not gzip."""

from __future__ import annotations

import gzip
import json
import os
import zlib

import httpx
import pytest

from tierwise.cloud.decompress import BadEncodingError, inflate

from .support import Cloud
from .test_telemetry import events, read_all

LIMIT = 1024 * 1024  # conftest's max_body_bytes
JSON = {"Content-Type": "application/json"}
GZIP = JSON | {"Content-Encoding": "gzip"}


def telemetry_body(seqs: list[int]) -> bytes:
    return json.dumps({"events": events("cam1", seqs)}).encode()


def test_gzip_batch_is_stored_as_if_sent_plain(cloud: Cloud) -> None:
    body = telemetry_body(list(range(200)))
    response = cloud.client.post(
        "/v1/sites/a/telemetry", content=gzip.compress(body), headers=cloud.site_a | GZIP
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 200
    assert read_all(cloud, "a", "cam1", cloud.site_a) == list(range(200))


def test_gzip_over_real_http_and_large_enough_to_inflate_on_a_thread(
    cloud: Cloud, live: str
) -> None:
    batch = events("cam1", list(range(2_000)))
    for event in batch:  # random digests compress poorly: the gzip body stays large
        event["body"]["digest"] = os.urandom(32).hex()
    compressed = gzip.compress(json.dumps({"events": batch}).encode())
    assert len(compressed) > 64 * 1024
    with httpx.Client(base_url=live, timeout=30) as client:
        response = client.post(
            "/v1/sites/a/telemetry", content=compressed, headers=cloud.site_a | GZIP
        )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2_000


def test_a_small_gzip_that_inflates_past_the_limit_is_413(cloud: Cloud) -> None:
    bomb = gzip.compress(b'{"events": [' + b" " * (LIMIT * 4) + b"]}")
    assert len(bomb) < LIMIT // 100  # the wire size alone would pass
    response = cloud.client.post("/v1/sites/a/telemetry", content=bomb, headers=cloud.site_a | GZIP)
    assert response.status_code == 413
    assert "once decompressed" in response.json()["detail"]


def test_gzip_exactly_at_the_limit_is_accepted(cloud: Cloud) -> None:
    body = b'{"events": []}'.ljust(LIMIT, b" ")
    response = cloud.client.post(
        "/v1/sites/a/telemetry", content=gzip.compress(body), headers=cloud.site_a | GZIP
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"this is not gzip at all", "not valid gzip"),
        (gzip.compress(b'{"events": []}')[:-9], "truncated"),
        (gzip.compress(b'{"events": []}') + b"trailing", "data after the gzip stream"),
    ],
    ids=["garbage", "truncated", "trailing-data"],
)
def test_body_that_is_not_gzip_is_400_saying_why(cloud: Cloud, body: bytes, says: str) -> None:
    response = cloud.client.post("/v1/sites/a/telemetry", content=body, headers=cloud.site_a | GZIP)
    assert response.status_code == 400
    assert says in response.json()["detail"]


def test_unsupported_encoding_is_415_naming_what_is_accepted(cloud: Cloud) -> None:
    body = zlib.compress(b'{"events": []}')
    headers = cloud.site_a | JSON | {"Content-Encoding": "br"}
    response = cloud.client.post("/v1/sites/a/telemetry", content=body, headers=headers)
    assert response.status_code == 415
    assert "'br'" in response.json()["detail"]
    assert "gzip" in response.json()["detail"]


def test_identity_encoding_is_left_alone(cloud: Cloud) -> None:
    headers = cloud.site_a | JSON | {"Content-Encoding": "identity"}
    response = cloud.client.post(
        "/v1/sites/a/telemetry", content=telemetry_body([1]), headers=headers
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1


def test_gzip_without_a_token_still_needs_one(cloud: Cloud) -> None:
    compressed = gzip.compress(telemetry_body([1]))
    response = cloud.client.post("/v1/sites/a/telemetry", content=compressed, headers=GZIP)
    assert response.status_code == 401


def test_inflate_stops_at_the_limit_without_inflating_the_rest() -> None:
    compressed = gzip.compress(b"\0" * 50_000_000)
    with pytest.raises(BadEncodingError) as refused:
        inflate(compressed, 1000)
    assert refused.value.status == 413
    assert inflate(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000
