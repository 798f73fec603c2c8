"""Decide whether a package may be trusted: signature, each file's bytes, file list, version.

`verify_package` checks, in this order, and refuses at the first failure with a reason that
says exactly what is wrong (VerificationError, exit code 3):

1. manifest.json and manifest.sig are present (a package without a signature is refused);
2. the signature was made by a trusted key and matches manifest.json byte for byte;
3. the manifest parses (only after the signature: never parse what nobody vouched for);
4. the version is newer than the installed one, if one is given (rollback protection);
5. the files present are exactly the files the manifest lists (nothing missing, nothing extra,
   no symlinks), and each file's sha256 matches.

Edge side: needs only `cryptography`, pydantic and the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from tierwise.errors import VerificationError
from tierwise.package.keys import load_trusted_keys
from tierwise.package.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    list_files,
    parse_manifest,
    sha256_file,
)
from tierwise.package.signing import check_signature

TrustedKeys = dict[str, Ed25519PublicKey]


def verify_package(
    path: str | Path,
    trusted_keys: TrustedKeys | Iterable[str | Path] | str | Path,
    installed_version: int | None = None,
) -> Manifest:
    """Return the package's manifest if every check passes; raise VerificationError otherwise.

    `trusted_keys` is {key id: public key} (see keys.load_trusted_keys) or paths of public
    key files. `installed_version`, when given, must be lower than the package's version.
    """
    root = Path(path)
    trusted = trusted_keys if isinstance(trusted_keys, dict) else load_trusted_keys(trusted_keys)
    if not root.is_dir():
        raise VerificationError(f"{root}: not a package directory")
    manifest_raw = _read_plain(root, MANIFEST_NAME, "not a package: manifest.json is missing")
    signature_raw = _read_plain(root, SIGNATURE_NAME, "not signed: manifest.sig is missing")
    check_signature(manifest_raw, signature_raw, trusted)
    try:
        manifest = parse_manifest(manifest_raw)
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise VerificationError(
            f"{MANIFEST_NAME} is signed but not a valid manifest: {first}"
        ) from None
    if installed_version is not None and manifest.version <= installed_version:
        raise VerificationError(
            f"rollback refused: {manifest.name} version {manifest.version} is not newer than the "
            f"installed version {installed_version}"
        )
    check_files(root, manifest)
    return manifest


def check_files(root: Path, manifest: Manifest) -> None:
    """The files present must be exactly the manifest's, each with the listed sha256."""
    present, odd = list_files(root)
    if odd:
        raise VerificationError(
            f"file list differs from the manifest: {odd[0]} is not a regular file"
        )
    missing = sorted(set(manifest.files) - set(present))
    if missing:
        raise VerificationError(
            f"file list differs from the manifest: {missing[0]} is listed but missing"
        )
    extra = sorted(set(present) - set(manifest.files))
    if extra:
        raise VerificationError(
            f"file list differs from the manifest: {extra[0]} is present but not listed"
        )
    for rel, expected in sorted(manifest.files.items()):
        actual = sha256_file(present[rel])
        if actual != expected:
            raise VerificationError(
                f"{rel} was changed after signing: sha256 {actual[:16]}… but the manifest says "
                f"{expected[:16]}…"
            )


def _read_plain(root: Path, name: str, missing: str) -> bytes:
    path = root / name
    if path.is_symlink():
        raise VerificationError(f"{name} is a symlink; a package holds only regular files")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise VerificationError(missing) from None
    except OSError as exc:
        raise VerificationError(f"cannot read {name}: {exc.strerror or exc}") from None
