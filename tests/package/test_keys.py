"""Signing keys: `tierwise keys new`, PEM and raw forms, trust from files and directories."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tierwise.errors import UsageError
from tierwise.package.keys import (
    key_id,
    load_private_key,
    load_public_key,
    load_trusted_keys,
    write_keypair,
)

Cli = Callable[..., tuple[int, str, str]]


def test_keys_new_writes_a_private_pem_only_its_owner_reads(tmp_path: Path, cli: Cli) -> None:
    code, out, _ = cli("keys", "new", "--out", tmp_path / "k", "--name", "release")
    assert code == 0
    private, public = tmp_path / "k" / "release.key", tmp_path / "k" / "release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    pair = load_private_key(private).public_key()
    assert key_id(pair) == key_id(load_public_key(public))
    assert key_id(pair) in out


def test_keys_new_will_not_overwrite_a_key(tmp_path: Path, cli: Cli) -> None:
    write_keypair(tmp_path)
    before = (tmp_path / "tierwise.key").read_bytes()
    code, _, err = cli("keys", "new", "--out", tmp_path)
    assert code == 2
    assert "already exists; pass --force" in err
    assert (tmp_path / "tierwise.key").read_bytes() == before
    assert cli("keys", "new", "--out", tmp_path, "--force")[0] == 0
    assert (tmp_path / "tierwise.key").read_bytes() != before


def test_raw_32_byte_keys_load_too(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "raw.key").write_bytes(key.private_bytes_raw())
    (tmp_path / "raw.pub").write_bytes(key.public_key().public_bytes_raw())
    assert key_id(load_private_key(tmp_path / "raw.key").public_key()) == key_id(key.public_key())
    assert key_id(load_public_key(tmp_path / "raw.pub")) == key_id(key.public_key())


def test_a_directory_of_public_keys_is_trusted_whole(tmp_path: Path) -> None:
    _, first = write_keypair(tmp_path, "a")
    _, second = write_keypair(tmp_path, "b")
    trusted = load_trusted_keys([tmp_path])
    assert set(trusted) == {key_id(load_public_key(first)), key_id(load_public_key(second))}
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no \*\.pub public keys"):
        load_trusted_keys([tmp_path / "empty"])


@pytest.mark.parametrize(
    ("content", "loader", "reason"),
    [
        (b"hello", load_public_key, "not an Ed25519 public key"),
        (b"hello", load_private_key, "not an Ed25519 private key"),
    ],
)
def test_not_a_key_is_bad_input(
    tmp_path: Path, content: bytes, loader: Callable[[Path], object], reason: str
) -> None:
    (tmp_path / "k").write_bytes(content)
    with pytest.raises(UsageError, match=reason):
        loader(tmp_path / "k")
    with pytest.raises(UsageError, match="cannot read"):
        loader(tmp_path / "absent")


def test_a_public_key_is_not_a_private_key(tmp_path: Path) -> None:
    _, public = write_keypair(tmp_path)
    with pytest.raises(UsageError, match="not an Ed25519 private key"):
        load_private_key(public)
