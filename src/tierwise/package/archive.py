"""Unpack a package archive (tar.gz) safely: bounded in size, no links out, no `..`.

The registry unpacks uploads, the edge agent unpacks what it downloads; both call this, so
the rules for what an archive may contain live in one place.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tierwise.errors import VerificationError

MAX_MEMBERS = 1_000


def unpack_archive(archive: Path | bytes, into: Path, max_bytes: int) -> Path:
    """Extract with tarfile's `data` filter; return the package root (holding manifest.json).

    The root is `into` itself, or its one top directory. Raises VerificationError when the
    archive is unreadable, has more than MAX_MEMBERS files or `max_bytes` unpacked, or holds
    no manifest.
    """
    source = {"fileobj": io.BytesIO(archive)} if isinstance(archive, bytes) else {"name": archive}
    try:
        with tarfile.open(mode="r:gz", **source) as tar:
            members, total = [], 0
            for member in tar:
                members.append(member)
                total += max(member.size, 0)
                if len(members) > MAX_MEMBERS or total > max_bytes:
                    raise VerificationError(
                        f"archive too big unpacked (> {MAX_MEMBERS} files or > {max_bytes} bytes)"
                    )
            tar.extractall(into, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise VerificationError(f"not a readable tar.gz package archive: {exc}") from None
    if (into / "manifest.json").is_file():
        return into
    entries = list(into.iterdir())
    if len(entries) == 1 and (entries[0] / "manifest.json").is_file():
        return entries[0]
    raise VerificationError("archive holds no manifest.json (at its root or in one top directory)")
