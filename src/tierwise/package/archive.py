"""A package directory as a tar.gz archive, and back: the one format uploads and downloads use.

Operators pack (`tierwise up`, `tierwise federate --cloud`); the registry unpacks uploads and
the edge agent unpacks what it downloads. Both directions live here, so the rules for what an
archive holds — and may not hold: bounded in size, no links out, no `..` — are in one place.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from tierwise.errors import VerificationError

MAX_MEMBERS = 1_000


def pack_archive(package_dir: Path, *, top_dir: bool = True) -> bytes:
    """The package directory as tar.gz bytes; the same files always give the same bytes.

    Members are sorted by name and carry no owner, time or umask of the machine that packed
    them (nor does the gzip header), so packing a package again gives the archive the
    registry already holds: a retried upload is recognised as the same one, not a conflict.
    With `top_dir` every member sits under the directory's own name, otherwise at the root
    (the registry accepts both). A symbolic link is packed as a link, for the unpacker to
    refuse.
    """
    members = sorted(package_dir.rglob("*"), key=lambda p: p.relative_to(package_dir).as_posix())
    prefix = f"{package_dir.name}/" if top_dir else ""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        if top_dir:
            tar.add(package_dir, arcname=package_dir.name, recursive=False, filter=_anonymous)
        for path in members:
            arcname = prefix + path.relative_to(package_dir).as_posix()
            tar.add(path, arcname=arcname, recursive=False, filter=_anonymous)
    return buffer.getvalue()


def _anonymous(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mtime = 0
    member.mode = 0o755 if member.isdir() else 0o644
    return member


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
