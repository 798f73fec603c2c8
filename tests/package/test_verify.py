"""Every refusal of `verify_package` and `tierwise verify`: exit code 3 and the precise reason."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tierwise.errors import EXIT_REFUSED, VerificationError
from tierwise.package.manifest import MANIFEST_NAME, SIGNATURE_NAME
from tierwise.package.verify import verify_package

from .support import Keys

Cli = Callable[..., tuple[int, str, str]]


def _flip_byte(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _refused(package: Path, keys: list[Path], cli: Cli, reason: str, *extra: str) -> None:
    """The API and the CLI both refuse, with `reason` in the message and exit code 3."""
    installed = int(extra[1]) if extra[:1] == ("--installed-version",) else None
    with pytest.raises(VerificationError, match=re.escape(reason)):
        verify_package(package, keys, installed_version=installed)
    trust = [arg for key in keys for arg in ("--trust", str(key))]
    code, _, err = cli("verify", package, *trust, *extra)
    assert code == EXIT_REFUSED
    assert err.startswith("error: ")
    assert reason in err


def test_a_fresh_package_verifies(package: Path, keys: Keys, cli: Cli) -> None:
    manifest = verify_package(package, [keys.public])
    assert (manifest.name, manifest.version) == ("digits", 1)
    code, out, _ = cli("verify", package, "--trust", keys.public)
    assert code == 0
    assert "ok: digits v1" in out


@pytest.mark.parametrize("file", ["model-fp32.onnx", "model-int8.onnx"])
def test_one_changed_byte_in_a_model_file_is_refused(
    package: Path, keys: Keys, cli: Cli, file: str
) -> None:
    _flip_byte(package / file, offset=len((package / file).read_bytes()) // 2)
    _refused(package, [keys.public], cli, f"{file} was changed after signing")


def test_one_changed_byte_in_the_manifest_is_refused(package: Path, keys: Keys, cli: Cli) -> None:
    raw = (package / MANIFEST_NAME).read_text()
    (package / MANIFEST_NAME).write_text(raw.replace('"version": 1', '"version": 9'))
    _refused(package, [keys.public], cli, "bad signature: manifest.sig does not match")


def test_a_missing_signature_is_refused(package: Path, keys: Keys, cli: Cli) -> None:
    (package / SIGNATURE_NAME).unlink()
    _refused(package, [keys.public], cli, "not signed: manifest.sig is missing")


def test_a_wrong_signature_is_refused(package: Path, keys: Keys, cli: Cli) -> None:
    sig = json.loads((package / SIGNATURE_NAME).read_text())
    blob = bytearray(base64.b64decode(sig["signature"]))
    blob[0] ^= 0xFF
    sig["signature"] = base64.b64encode(bytes(blob)).decode()
    (package / SIGNATURE_NAME).write_text(json.dumps(sig))
    _refused(package, [keys.public], cli, "bad signature")


def test_a_malformed_signature_file_is_refused(package: Path, keys: Keys, cli: Cli) -> None:
    (package / SIGNATURE_NAME).write_text("not json")
    _refused(package, [keys.public], cli, "manifest.sig is malformed")


def test_a_package_signed_by_an_untrusted_key_is_refused(
    package: Path, keys: Keys, other_keys: Keys, cli: Cli
) -> None:
    _refused(package, [other_keys.public], cli, "which is not trusted")


def test_a_signature_claiming_a_trusted_key_id_does_not_help(
    package: Path, keys: Keys, other_keys: Keys, cli: Cli
) -> None:
    """Re-sign with a stranger's key but keep the trusted key's id: still a bad signature."""
    from tierwise.package.keys import load_private_key

    sig = json.loads((package / SIGNATURE_NAME).read_text())
    forged = load_private_key(other_keys.private).sign((package / MANIFEST_NAME).read_bytes())
    sig["signature"] = base64.b64encode(forged).decode()
    (package / SIGNATURE_NAME).write_text(json.dumps(sig))
    _refused(package, [keys.public], cli, "bad signature")


@pytest.mark.parametrize("installed", [1, 2])
def test_a_version_not_newer_than_the_installed_one_is_refused(
    package: Path, keys: Keys, cli: Cli, installed: int
) -> None:
    _refused(
        package,
        [keys.public],
        cli,
        f"rollback refused: digits version 1 is not newer than the installed version {installed}",
        "--installed-version",
        str(installed),
    )


def test_a_newer_version_passes_the_rollback_check(package: Path, keys: Keys) -> None:
    assert verify_package(package, [keys.public], installed_version=0).version == 1


def test_an_extra_file_is_refused(package: Path, keys: Keys, cli: Cli) -> None:
    (package / "notes.txt").write_text("smuggled")
    _refused(package, [keys.public], cli, "notes.txt is present but not listed")


def test_an_extra_file_in_a_subdirectory_is_refused(package: Path, keys: Keys, cli: Cli) -> None:
    (package / "extra").mkdir()
    (package / "extra" / "model.onnx").write_bytes(b"x")
    _refused(package, [keys.public], cli, "extra/model.onnx is present but not listed")


def test_a_missing_file_is_refused(package: Path, keys: Keys, cli: Cli) -> None:
    (package / "model-int8.onnx").unlink()
    _refused(package, [keys.public], cli, "model-int8.onnx is listed but missing")


def test_a_symlink_is_refused(package: Path, keys: Keys, cli: Cli) -> None:
    os.symlink("/etc/hostname", package / "link")
    _refused(package, [keys.public], cli, "link is not a regular file")


def test_a_directory_without_a_manifest_is_refused(tmp_path: Path, keys: Keys, cli: Cli) -> None:
    _refused(tmp_path, [keys.public], cli, "manifest.json is missing")


def test_trusting_no_key_refuses(package: Path) -> None:
    with pytest.raises(VerificationError, match="no trusted keys"):
        verify_package(package, {})


def test_verify_against_an_install_dir_refuses_what_is_not_newer(
    package: Path, built_v2: Path, keys: Keys, cli: Cli, tmp_path: Path
) -> None:
    from tierwise.package.install import install_package

    install_package(built_v2, tmp_path / "installed", [keys.public])
    code, _, err = cli(
        "verify", package, "--trust", keys.public, "--installed", tmp_path / "installed"
    )
    assert code == EXIT_REFUSED
    assert "not newer than the installed version 2" in err


def test_a_bad_trust_file_is_bad_input_not_a_refusal(package: Path, cli: Cli) -> None:
    code, _, err = cli("verify", package, "--trust", package / "model-fp32.onnx")
    assert code == 2
    assert "not an Ed25519 public key" in err
