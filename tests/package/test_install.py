"""Installing on a gateway: atomic swap, last-known-good, and a refused update changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tierwise.errors import EXIT_REFUSED, UsageError, VerificationError
from tierwise.package.install import (
    current_package,
    install_package,
    installed_version,
    rollback,
)
from tierwise.package.manifest import read_manifest

from .support import Inputs, Keys, build, tree_bytes

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def installed(built: Path, keys: Keys, tmp_path: Path) -> Path:
    """An install dir holding digits v1."""
    target = tmp_path / "gateway"
    install_package(built, target, [keys.public])
    return target


def test_install_then_update_keeps_the_previous_as_last_known_good(
    installed: Path, built_v2: Path, keys: Keys
) -> None:
    assert installed_version(installed) == 1
    manifest = install_package(built_v2, installed, [keys.public])
    assert manifest.version == 2
    assert installed_version(installed) == 2
    assert read_manifest((installed / "previous").resolve()).version == 1
    assert not list(installed.glob(".staging-*"))


def test_the_installed_copy_is_independent_of_the_source(
    built: Path, keys: Keys, tmp_path: Path
) -> None:
    source = Path(shutil.copytree(built, tmp_path / "src"))
    install_package(source, tmp_path / "gw", [keys.public])
    shutil.rmtree(source)
    current = current_package(tmp_path / "gw")
    assert current is not None
    assert read_manifest(current).version == 1


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("byte", "model-int8.onnx was changed after signing"),
        ("extra", "evil.so is present but not listed"),
        ("unsigned", "not signed"),
    ],
)
def test_a_refused_update_leaves_the_installed_package_untouched(
    installed: Path, built_v2: Path, keys: Keys, tmp_path: Path, tamper: str, reason: str
) -> None:
    update = Path(shutil.copytree(built_v2, tmp_path / "update"))
    if tamper == "byte":
        blob = bytearray((update / "model-int8.onnx").read_bytes())
        blob[100] ^= 0x01
        (update / "model-int8.onnx").write_bytes(bytes(blob))
    elif tamper == "extra":
        (update / "evil.so").write_bytes(b"\x7fELF")
    else:
        (update / "manifest.sig").unlink()
    before = tree_bytes(installed)
    with pytest.raises(VerificationError, match=reason):
        install_package(update, installed, [keys.public])
    assert tree_bytes(installed) == before
    assert installed_version(installed) == 1


def test_a_rollback_to_an_older_version_is_refused_and_changes_nothing(
    installed: Path, built: Path, built_v2: Path, keys: Keys
) -> None:
    install_package(built_v2, installed, [keys.public])
    before = tree_bytes(installed)
    with pytest.raises(VerificationError, match="rollback refused"):
        install_package(built, installed, [keys.public])
    with pytest.raises(VerificationError, match="rollback refused"):
        install_package(built_v2, installed, [keys.public])  # the same version again
    assert tree_bytes(installed) == before


def test_an_update_from_an_untrusted_key_is_refused(
    installed: Path, inputs: Inputs, other_keys: Keys, keys: Keys, tmp_path: Path
) -> None:
    stranger_v2 = tmp_path / "stranger-v2"
    build(inputs, stranger_v2, other_keys, version=2, cloud=False)
    before = tree_bytes(installed)
    with pytest.raises(VerificationError, match="not trusted"):
        install_package(stranger_v2, installed, [keys.public])
    assert tree_bytes(installed) == before


def test_a_different_model_is_not_installed_over_another(
    installed: Path, inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    other = tmp_path / "other-v5"
    build(inputs, other, keys, version=5, name="wine", cloud=False)
    before = tree_bytes(installed)
    with pytest.raises(VerificationError, match="holds package digits; refusing to replace"):
        install_package(other, installed, [keys.public])
    assert tree_bytes(installed) == before


def test_cli_install_refusal_exits_3_and_keeps_the_older_package(
    installed: Path, built_v2: Path, keys: Keys, tmp_path: Path, cli: Cli
) -> None:
    update = Path(shutil.copytree(built_v2, tmp_path / "update"))
    (update / "model-fp32.onnx").write_bytes(b"swapped")
    before = tree_bytes(installed)
    code, _, err = cli("install", update, "--into", installed, "--trust", keys.public)
    assert code == EXIT_REFUSED
    assert "model-fp32.onnx was changed after signing" in err
    assert tree_bytes(installed) == before
    code, out, _ = cli("install", built_v2, "--into", installed, "--trust", keys.public)
    assert code == 0
    assert "installed digits v2" in out
    assert "was v1, kept as previous" in out


def test_rollback_restores_last_known_good(installed: Path, built_v2: Path, keys: Keys) -> None:
    install_package(built_v2, installed, [keys.public])
    assert rollback(installed).version == 1
    assert installed_version(installed) == 1
    assert not (installed / "previous").exists()
    with pytest.raises(UsageError, match="no previous package"):
        rollback(installed)
    # after a rollback the newer version may be installed again (it is newer than current)
    assert install_package(built_v2, installed, [keys.public]).version == 2


def test_stray_staging_dirs_from_a_crash_are_cleaned(
    installed: Path, built_v2: Path, keys: Keys
) -> None:
    (installed / ".staging-crashed").mkdir()
    (installed / ".staging-crashed" / "half.onnx").write_bytes(b"...")
    install_package(built_v2, installed, [keys.public])
    assert not list(installed.glob(".staging-*"))


def test_only_current_and_previous_releases_are_kept(
    installed: Path, inputs: Inputs, keys: Keys, tmp_path: Path
) -> None:
    for version in (2, 3):
        out = tmp_path / f"v{version}"
        build(inputs, out, keys, version=version, cloud=False)
        install_package(out, installed, [keys.public])
    assert sorted(p.name for p in (installed / "releases").iterdir()) == [
        "digits-v2",
        "digits-v3",
    ]
