"""The registry takes only signed, intact, newer packages, and serves them back byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import httpx
from tests.package.support import Keys, make_keys

from tierwise.package.archive import pack_archive

from .packages import build
from .support import Cloud


def upload(cloud: Cloud, blob: bytes) -> httpx.Response:
    return cloud.client.post(
        "/v1/packages", content=blob, headers=cloud.admin | {"Content-Type": "application/gzip"}
    )


def registered(cloud: Cloud) -> list[tuple[str, int]]:
    listing = cloud.client.get("/v1/packages", headers=cloud.site_a).json()
    return [(p["name"], p["version"]) for p in listing]


def test_signed_package_is_registered_and_served_back(
    cloud: Cloud, signer: Keys, tmp_path: Path
) -> None:
    blob = pack_archive(build(tmp_path / "p1", signer, "wine", 1))
    response = upload(cloud, blob)
    assert response.status_code == 201, response.text
    info = response.json()
    assert (info["name"], info["version"], info["size"]) == ("wine", 1, len(blob))
    assert info["sha256"] == hashlib.sha256(blob).hexdigest()
    download = cloud.client.get("/v1/packages/wine/1", headers=cloud.site_b)
    assert download.status_code == 200
    assert download.content == blob
    assert download.headers["X-Sha256"] == info["sha256"]
    assert registered(cloud) == [("wine", 1)]


def test_same_archive_again_is_a_harmless_retry(cloud: Cloud, signer: Keys, tmp_path: Path) -> None:
    package = build(tmp_path / "p1", signer, "wine", 1)
    assert upload(cloud, pack_archive(package)).status_code == 201
    again = upload(cloud, pack_archive(package))  # packed again, as a retrying operator does
    assert again.status_code == 200
    assert registered(cloud) == [("wine", 1)]


def test_archive_without_top_directory_is_accepted(
    cloud: Cloud, signer: Keys, tmp_path: Path
) -> None:
    blob = pack_archive(build(tmp_path / "p1", signer, "wine", 1), top_dir=False)
    assert upload(cloud, blob).status_code == 201


def test_tampered_model_file_is_refused_and_registry_unchanged(
    cloud: Cloud, signer: Keys, tmp_path: Path
) -> None:
    upload(cloud, pack_archive(build(tmp_path / "p1", signer, "wine", 1)))
    package = build(tmp_path / "p2", signer, "wine", 2)
    model = package / "model-fp32.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    response = upload(cloud, pack_archive(package))
    assert response.status_code == 422
    assert "changed after signing" in response.json()["detail"]
    assert registered(cloud) == [("wine", 1)]


def test_manifest_edited_after_signing_is_refused(
    cloud: Cloud, signer: Keys, tmp_path: Path
) -> None:
    package = build(tmp_path / "p1", signer, "wine", 1)
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["version"] = 7
    (package / "manifest.json").write_text(json.dumps(manifest))
    response = upload(cloud, pack_archive(package))
    assert response.status_code == 422
    assert "refused" in response.json()["detail"]
    assert registered(cloud) == []


def test_package_signed_by_an_untrusted_key_is_refused(cloud: Cloud, tmp_path: Path) -> None:
    stranger = make_keys(tmp_path / "stranger", "stranger")
    response = upload(cloud, pack_archive(build(tmp_path / "p1", stranger, "wine", 1)))
    assert response.status_code == 422
    assert "not trusted" in response.json()["detail"]
    assert registered(cloud) == []


def test_older_or_equal_version_is_refused_and_current_unchanged(
    cloud: Cloud, signer: Keys, tmp_path: Path
) -> None:
    assert upload(cloud, pack_archive(build(tmp_path / "v2", signer, "wine", 2))).status_code == 201
    older = upload(cloud, pack_archive(build(tmp_path / "v1", signer, "wine", 1)))
    same_version_other_bytes = upload(
        cloud, pack_archive(build(tmp_path / "v2b", signer, "wine", 2, max_iter=3))
    )
    assert older.status_code == 409
    assert "not newer" in older.json()["detail"]
    assert same_version_other_bytes.status_code == 409
    assert registered(cloud) == [("wine", 2)]
    assert cloud.client.get("/v1/packages/wine/2", headers=cloud.admin).status_code == 200


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_unreadable_archives_are_422(cloud: Cloud, tmp_path: Path) -> None:
    cases = {
        "not gzip": b"hello",
        "empty": b"",
        "no manifest": tar_gz({"pkg/model.onnx": b"x"}),
        "bad manifest": tar_gz({"manifest.json": b"{not json"}),
        "traversal": tar_gz({"../../escaped.txt": b"x", "manifest.json": b"{}"}),
        "absolute": tar_gz({"/tmp/tierwise-absolute.txt": b"x"}),
    }
    codes = {name: upload(cloud, blob).status_code for name, blob in cases.items()}
    assert codes == dict.fromkeys(cases, 422)
    assert not (cloud.settings.package_dir.parent / "escaped.txt").exists()
    assert not Path("/tmp/tierwise-absolute.txt").exists()
    assert registered(cloud) == []


def test_symlink_in_archive_is_refused(cloud: Cloud, signer: Keys, tmp_path: Path) -> None:
    package = build(tmp_path / "p1", signer, "wine", 1)
    (package / "link").symlink_to("/etc/passwd")
    assert upload(cloud, pack_archive(package)).status_code == 422
    assert registered(cloud) == []


def test_unknown_package_is_404(cloud: Cloud) -> None:
    assert cloud.client.get("/v1/packages/nope/1", headers=cloud.admin).status_code == 404


def test_upload_metrics_count_results(cloud: Cloud, signer: Keys, tmp_path: Path) -> None:
    upload(cloud, pack_archive(build(tmp_path / "v1", signer, "wine", 1)))
    upload(cloud, b"junk")
    text = cloud.client.get("/metrics").text
    assert 'tierwise_cloud_package_uploads_total{result="accepted"} 1.0' in text
    assert 'tierwise_cloud_package_uploads_total{result="refused"} 1.0' in text
