"""A package upload cut mid-stream, with a declared length and chunked: the registry keeps
nothing of it (no package row, no archive, no partial file), and the retry succeeds."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from tests.edge.support import ADMIN, CloudProcess, build_package
from tests.faults.support import Tally
from tests.package.support import make_keys

from tierwise.package.archive import pack_archive
from tierwise.wire import ARCHIVE_MEDIA_TYPE

PACKAGE = "digits-edge"


def _cut_upload(url: str, archive: bytes, chunked: bool) -> None:
    """Send the request line, headers and half the archive, then drop the connection."""
    parts = urlsplit(url)
    half = archive[: len(archive) // 2]
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(archive)}"
    head = (
        f"POST /v1/packages HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {ADMIN}\r\nContent-Type: {ARCHIVE_MEDIA_TYPE}\r\n"
        f"{framing}\r\n\r\n"
    ).encode()
    body = f"{len(half):x}\r\n".encode() + half + b"\r\n" if chunked else half
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head + body)
        time.sleep(0.2)  # the server is now streaming the body to its incoming file


def _leftovers(store: Path) -> list[str]:
    """Files the registry holds besides registered archives: partial uploads."""
    return sorted(
        str(p.relative_to(store))
        for p in store.rglob("*")
        if p.is_file() and (p.parent.name == "incoming" or p.name.endswith(".partial"))
    )


def test_an_upload_cut_mid_stream_leaves_nothing_and_the_retry_succeeds(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    archive = pack_archive(build_package(tmp_path / "pkg", keys.private, PACKAGE, 1))
    with CloudProcess(tmp_path / "cloud", keys.public) as cloud:
        store = cloud.data_dir / "packages"
        for chunked in (False, True):
            _cut_upload(cloud.url, archive, chunked)
        deadline = time.monotonic() + 10
        while _leftovers(store) and time.monotonic() < deadline:
            time.sleep(0.05)  # the server notices the disconnect and cleans up
        assert _leftovers(store) == []
        listed = httpx.get(cloud.url + "/v1/packages", headers=_admin(), timeout=10).json()
        assert listed == [], "a cut upload was registered"
        assert list(store.glob("*.tar.gz")) == [], "a cut upload left an archive"

        answers = [_upload(cloud.url, archive) for _ in range(2)]  # the retry, then a resend
        assert [a.status_code for a in answers] == [201, 200]
        listed = httpx.get(cloud.url + "/v1/packages", headers=_admin(), timeout=10).json()
        served = httpx.get(f"{cloud.url}/v1/packages/{PACKAGE}/1", headers=_admin(), timeout=10)
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == hashlib.sha256(archive).hexdigest()
        Tally(
            "package upload cut mid-stream",
            acknowledged=sum(a.status_code == 201 for a in answers),
            delivered=len(listed),
            duplicates=sum(a.status_code == 200 for a in answers),
            stored_twice=len(listed) - len({(p["name"], p["version"]) for p in listed}),
            notes={"cut uploads": 2, "partial files left": len(_leftovers(store))},
        ).check()


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def _upload(url: str, archive: bytes) -> httpx.Response:
    headers = _admin() | {"Content-Type": ARCHIVE_MEDIA_TYPE}
    return httpx.post(url + "/v1/packages", content=archive, headers=headers, timeout=30)
