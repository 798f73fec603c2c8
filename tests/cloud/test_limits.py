"""Request bodies above the limit get 413, whether their size is announced or streamed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .support import Cloud

LIMIT = 1024 * 1024  # conftest's max_body_bytes
PACKAGE_LIMIT = 4 * 1024 * 1024  # conftest's max_package_bytes


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


def test_announced_oversized_body_is_413_before_auth_or_parsing(cloud: Cloud) -> None:
    body = b"x" * (LIMIT + 1)
    response = cloud.client.post(
        "/v1/sites/a/telemetry", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_body_at_the_limit_is_read(cloud: Cloud) -> None:
    body = b'{"events": []}'.ljust(LIMIT, b" ")
    response = cloud.client.post(
        "/v1/sites/a/telemetry",
        content=body,
        headers=cloud.site_a | {"Content-Type": "application/json"},
    )
    assert response.status_code == 200


def test_streamed_oversized_body_is_413_over_real_http(cloud: Cloud, live: str) -> None:
    # No Content-Length: the body arrives chunked and must be cut off as it streams.
    with httpx.Client(base_url=live, timeout=10) as client:
        try:
            response = client.post(
                "/v1/sites/a/telemetry",
                content=chunks(LIMIT * 3),
                headers=cloud.site_a | {"Content-Type": "application/json"},
            )
        except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            pytest.fail(f"the server dropped the connection instead of answering 413: {exc!r}")
    assert response.status_code == 413


def test_streamed_oversized_package_upload_is_413(cloud: Cloud, live: str) -> None:
    with httpx.Client(base_url=live, timeout=10) as client:
        response = client.post(
            "/v1/packages",
            content=chunks(PACKAGE_LIMIT + 1),
            headers=cloud.admin | {"Content-Type": "application/gzip"},
        )
    assert response.status_code == 413
    incoming = cloud.settings.package_dir / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())  # nothing left on disk


def test_package_uploads_have_their_own_larger_limit(cloud: Cloud) -> None:
    body = b"\x1f\x8b" + b"\0" * (2 * LIMIT)  # over the JSON limit, under the package one
    response = cloud.client.post(
        "/v1/packages", content=body, headers=cloud.admin | {"Content-Type": "application/gzip"}
    )
    assert response.status_code == 422  # read whole, then refused as not a package


def test_413_is_counted_in_metrics(cloud: Cloud) -> None:
    cloud.client.post("/v1/sites/a/telemetry", content=b"x" * (LIMIT + 1))
    text = cloud.client.get("/metrics").text
    assert 'route="<unmatched>",status="413"' in text
