"""Install packages on a gateway: verify a staged copy, swap it in atomically, keep last-known-good.

Layout of an install directory::

    releases/<name>-v<version>/   verified package copies (at most: current and previous)
    current  -> releases/...      symlink the agent loads from
    previous -> releases/...      last-known-good, for `rollback`

An update is copied into a staging directory inside the install dir first and the *copy* is
verified (so what was checked is what runs, whatever happens to the source meanwhile). Only
then are the links swapped, each with one atomic rename. A refused update leaves `current`,
`previous` and every installed byte exactly as they were; a crash mid-way leaves at worst a
stray staging directory, cleaned up by the next install.

Edge side: standard library + verify.py (cryptography, pydantic). POSIX (symlinks, rename).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tierwise.errors import UsageError, VerificationError
from tierwise.package.manifest import Manifest, read_manifest
from tierwise.package.verify import verify_package

RELEASES = "releases"
CURRENT = "current"
PREVIOUS = "previous"
STAGING_PREFIX = ".staging-"


def current_package(install_dir: str | Path) -> Path | None:
    """The directory of the package in use, or None when nothing is installed."""
    link = Path(install_dir) / CURRENT
    return link.resolve() if link.is_symlink() else None


def previous_package(install_dir: str | Path) -> Path | None:
    """The last-known-good package directory kept for `rollback`, or None."""
    return _target(Path(install_dir) / PREVIOUS)


def installed_version(install_dir: str | Path) -> int | None:
    """Version of the package in use (read from its manifest), or None."""
    current = current_package(install_dir)
    return None if current is None else read_manifest(current).version


def install_package(
    src: str | Path,
    install_dir: str | Path,
    trusted: dict[str, Ed25519PublicKey] | Iterable[str | Path] | str | Path,
) -> Manifest:
    """Verify `src` as an update of what is installed and make it current; return its manifest.

    Raises VerificationError (nothing changed) if the package is refused, including when its
    version is not newer than the installed one.
    """
    root = Path(install_dir)
    source = Path(src)
    if not source.is_dir():
        raise VerificationError(f"{source}: not a package directory")
    (root / RELEASES).mkdir(parents=True, exist_ok=True)
    _clean_staging(root)
    staging = root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    try:
        shutil.copytree(source, staging, symlinks=True)
        manifest = verify_package(staging, trusted, installed_version=installed_version(root))
        current = current_package(root)
        if current is not None and (held := read_manifest(current).name) != manifest.name:
            raise VerificationError(
                f"{root} holds package {held}; refusing to replace it with {manifest.name}"
            )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    release = root / RELEASES / f"{manifest.name}-v{manifest.version}"
    if release.exists():  # left over from an install that was later rolled back
        shutil.rmtree(release)
    os.rename(staging, release)
    _fsync_dir(root / RELEASES)
    old = current_package(root)
    if old is not None:
        _point(root, PREVIOUS, old)
    _point(root, CURRENT, release)
    _prune(root)
    return manifest


def rollback(install_dir: str | Path) -> Manifest:
    """Make the last-known-good package current again and drop the one that was current."""
    root = Path(install_dir)
    previous_link = root / PREVIOUS
    if not previous_link.is_symlink():
        raise UsageError(f"{root}: no previous package to roll back to")
    previous = previous_link.resolve()
    bad = current_package(root)
    _point(root, CURRENT, previous)
    previous_link.unlink()
    _fsync_dir(root)
    if bad is not None and bad != previous:
        shutil.rmtree(bad, ignore_errors=True)
    return read_manifest(previous)


def _point(root: Path, name: str, target: Path) -> None:
    """Atomically make root/name a relative symlink to target (rename over the old link)."""
    tmp = root / f".{name}.{uuid.uuid4().hex}"
    os.symlink(os.path.relpath(target, root), tmp)
    os.replace(tmp, root / name)
    _fsync_dir(root)


def _prune(root: Path) -> None:
    keep = {p for p in (current_package(root), _target(root / PREVIOUS)) if p is not None}
    for release in (root / RELEASES).iterdir():
        if release.resolve() not in keep:
            shutil.rmtree(release, ignore_errors=True)


def _target(link: Path) -> Path | None:
    return link.resolve() if link.is_symlink() else None


def _clean_staging(root: Path) -> None:
    for stray in root.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(stray, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    """Persist a rename: without it a power cut can undo the swap on some filesystems."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
