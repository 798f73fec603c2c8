"""The detached signature of a package: manifest.sig, signing it, and checking it against trust.

manifest.sig is a small JSON object::

    {"algorithm": "ed25519", "key_id": "<16 hex>", "signature": "<base64 of 64 bytes>"}

The signature covers the exact bytes of manifest.json, and manifest.json holds the sha256 of
every other file, so one signature vouches for every byte of the package. `key_id` only says
which trusted key to try; a forged id cannot help, because the signature must still verify.

Edge side: needs only `cryptography` and pydantic.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from tierwise.errors import VerificationError
from tierwise.package.keys import key_id
from tierwise.package.manifest import MANIFEST_NAME, SIGNATURE_NAME


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["ed25519"] = "ed25519"
    key_id: str
    signature: str  # base64


def sign_package(package_dir: str | Path, private_key: Ed25519PrivateKey) -> Signature:
    """Sign manifest.json's bytes and write manifest.sig next to it."""
    root = Path(package_dir)
    raw = (root / MANIFEST_NAME).read_bytes()
    sig = Signature(
        key_id=key_id(private_key.public_key()),
        signature=base64.b64encode(private_key.sign(raw)).decode("ascii"),
    )
    (root / SIGNATURE_NAME).write_text(sig.model_dump_json() + "\n", encoding="utf-8")
    return sig


def check_signature(
    manifest_raw: bytes, signature_raw: bytes, trusted: dict[str, Ed25519PublicKey]
) -> str:
    """Return the signing key's id, or raise VerificationError saying precisely what is wrong."""
    try:
        sig = Signature.model_validate_json(signature_raw)
        blob = base64.b64decode(sig.signature, validate=True)
    except (ValidationError, ValueError, binascii.Error):
        raise VerificationError(
            f"{SIGNATURE_NAME} is malformed: expected JSON with algorithm, key_id and a base64 "
            "signature"
        ) from None
    if not trusted:
        raise VerificationError("no trusted keys were given, so nothing can be verified")
    key = trusted.get(sig.key_id)
    if key is None:
        known = ", ".join(sorted(trusted))
        raise VerificationError(
            f"signed by key {sig.key_id}, which is not trusted (trusted keys: {known})"
        )
    try:
        key.verify(blob, manifest_raw)
    except InvalidSignature:
        raise VerificationError(
            f"bad signature: {SIGNATURE_NAME} does not match {MANIFEST_NAME} under trusted key "
            f"{sig.key_id} (the manifest was changed after signing, or the signature is wrong)"
        ) from None
    return sig.key_id
