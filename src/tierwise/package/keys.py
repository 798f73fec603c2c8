"""Ed25519 signing keys: make a pair, load either half from PEM or raw bytes, name a key by its id.

`tierwise keys new --out DIR` writes

    DIR/NAME.key   the private key, PKCS#8 PEM, unencrypted, mode 0600: keep it off gateways
    DIR/NAME.pub   the public key, SubjectPublicKeyInfo PEM: copy it to every verifier

Loading also accepts the raw 32-byte form of either key (what `cryptography`'s
`private_bytes_raw()` / `public_bytes_raw()` give), so keys kept in an HSM or a secrets store
can be exported without PEM. A key's id is the first 16 hex digits of the sha256 of its raw
public bytes; signatures carry it so a verifier can say which key signed.

Edge side: needs only `cryptography`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tierwise.errors import UsageError

RAW_KEY_BYTES = 32
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: sha256 of its raw bytes, first 16 hex digits."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


def write_keypair(
    out_dir: str | Path, name: str = "tierwise", force: bool = False
) -> tuple[Path, Path]:
    """Generate a key pair and write NAME.key (0600) and NAME.pub into `out_dir`."""
    out = Path(out_dir)
    private_path, public_path = out / f"{name}{PRIVATE_SUFFIX}", out / f"{name}{PUBLIC_SUFFIX}"
    if not force:
        for path in (private_path, public_path):
            if path.exists():
                raise UsageError(f"{path} already exists; pass --force to replace the key pair")
    out.mkdir(parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Create the private file with 0600 from the start: no window where others can read it.
    private_path.unlink(missing_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from PKCS#8 PEM or 32 raw bytes."""
    data = _read(path, "private key")
    if len(data) == RAW_KEY_BYTES:
        return Ed25519PrivateKey.from_private_bytes(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"{path}: not an Ed25519 private key (PEM or 32 raw bytes): {exc}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path}: a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key from SubjectPublicKeyInfo PEM or 32 raw bytes."""
    data = _read(path, "public key")
    if len(data) == RAW_KEY_BYTES:
        return Ed25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"{path}: not an Ed25519 public key (PEM or 32 raw bytes): {exc}"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path}: a {type(key).__name__}, not an Ed25519 public key")
    return key


def load_trusted_keys(paths: Iterable[str | Path] | str | Path) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id, from files; a directory contributes every *.pub inside it."""
    if isinstance(paths, str | Path):  # one path, not its characters
        paths = [paths]
    trusted: dict[str, Ed25519PublicKey] = {}
    for entry in paths:
        path = Path(entry)
        files = sorted(path.glob(f"*{PUBLIC_SUFFIX}")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise UsageError(f"{path}: no *{PUBLIC_SUFFIX} public keys in this directory")
        for file in files:
            key = load_public_key(file)
            trusted[key_id(key)] = key
    return trusted


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
