"""Every byte the WAN proxy forwards, kept in a file: what an eavesdropper on the WAN would see.

For audits and tests ("no raw input value crosses the WAN"): `WanProxy(..., capture=PATH)`
appends each chunk it delivers, in either direction, as one record. A record is a 9-byte
header — connection number (uint32), direction (`u` client -> target, `d` target -> client),
payload length (uint32), little-endian — then the payload. Records of one connection and
direction are in delivery order, so `read_streams` can rebuild each direction as the
contiguous byte stream the receiver got (a value split over two chunks is whole again).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path
from typing import BinaryIO

_HEADER = struct.Struct("<IcI")
UP = b"u"
DOWN = b"d"


class CaptureWriter:
    """Appends records to a capture file; one writer per proxy."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: BinaryIO = path.open("ab")
        self.bytes_written = 0

    def record(self, connection: int, direction: bytes, chunk: bytes) -> None:
        self._file.write(_HEADER.pack(connection, direction, len(chunk)))
        self._file.write(chunk)
        self.bytes_written += len(chunk)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_streams(path: Path) -> dict[tuple[int, str], bytes]:
    """(connection, "up" | "down") -> every byte that crossed that way, in order."""
    data = path.read_bytes()
    parts: dict[tuple[int, str], list[bytes]] = defaultdict(list)
    offset = 0
    while offset < len(data):
        if offset + _HEADER.size > len(data):
            raise ValueError(f"{path}: truncated record header at byte {offset}")
        connection, direction, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        if direction not in (UP, DOWN) or offset + length > len(data):
            raise ValueError(f"{path}: malformed record at byte {offset - _HEADER.size}")
        parts[(connection, "up" if direction == UP else "down")].append(
            data[offset : offset + length]
        )
        offset += length
    return {key: b"".join(chunks) for key, chunks in parts.items()}
