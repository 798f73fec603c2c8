"""Search captured WAN bytes for a site's raw input values: the tests' proof that none crossed.

For every value v of the rows, except values that are not distinctive — tiny (|v| < 1e-3) or,
to 6 digits, short decimals (4 significant digits or fewer, e.g. 0.0, 0.5, 1.25, 0.3749999),
which any traffic holds by chance:
- v as float64 (8 bytes, little-endian) at every byte offset of each stream: a value sent as
  a metric or a double array. A float32 widened to 64 bits carries only its 4 bytes, and
  the traffic holds doubles just as short of its own: Flower reports how long each
  ClientApp call took as the difference of two epoch timestamps, a multiple of 2^-22 s,
  exactly a float32 value. Now and then one equals an input by chance (a field-federation
  test failed on 0.1195 s). So, as for the checks below, the values must not be found more
  often than decoys (each value 37 float32 steps up, widened) allow: a leak of rows as
  doubles finds hundreds, chance one or two;
- v as decimal text: any number written in the traffic (JSON, a log line) with 7 or more
  significant digits that is v once read as a float32 (as a float32 round-trips however it
  was printed). Latencies and times are numbers too, and with thousands of them some equal
  a value by chance; so, as for 4-byte floats below, the values must not be found more
  often than decoys (each value 37 float32 steps up, which no site had);
- every two neighbouring values of a row as float32 (8 bytes), at every offset: a row, or any
  run of it, sent as a float32 array (the models' own dtype);
- v alone as float32 (4 bytes). Four bytes are too short to be distinctive in this much
  traffic: it carries thousands of float32 model weights of the same magnitude, so some
  4-byte patterns match by chance. The check is therefore comparative: the values must not be
  found more often than their float32 neighbours one ulp up, which no site ever had (a leak
  of the rows would find ~every value).

Compressed bodies are searched too: every gzip member found in a stream (an HTTP body the
edge uploader compressed) is inflated and searched as a stream of its own.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

GZIP_MAGIC = b"\x1f\x8b\x08"
DECOY_ULPS = 37  # decoy values: each value this many float32 steps up, which no site had


class RawValues:
    """The patterns of a site's rows, computed once for searching many captures."""

    def __init__(self, x: NDArray[np.float32]) -> None:
        x = np.asarray(x, np.float32)
        keep = _distinctive(x)
        distinctive = x[keep]
        assert len(distinctive) > 0.25 * x.size, "too few distinctive values to mean much"
        self.f64 = _sorted_set(distinctive.astype(np.float64).view(np.uint64))
        self.pairs = row_pairs(x, keep)
        self.f32 = _sorted_set(distinctive.view(np.uint32))
        decoys = _sorted_set(self.f32 + np.uint32(DECOY_ULPS))
        self.decoys = decoys[~_member(decoys, self.f32)]
        self.f64_decoys = _sorted_set(
            self.decoys.view(np.float32).astype(np.float64).view(np.uint64)
        )
        ulp_up = _sorted_set(np.nextafter(distinctive, np.float32(np.inf)).view(np.uint32))
        self.ulp_up = ulp_up[~_member(ulp_up, self.f32)]


def assert_no_value_crossed(
    x: NDArray[np.float32] | RawValues, streams: list[bytes], where: str
) -> str:
    """Fail if any distinctive value of `x` is in `streams` (see the module); returns a line
    saying what was searched."""
    raw = x if isinstance(x, RawValues) else RawValues(x)
    wire = [*streams, *inflated(streams)]
    doubles, doubles_chance = found(wire, raw.f64, 8), found(wire, raw.f64_decoys, 8)
    assert doubles <= 3 * doubles_chance + 2, f"{where}: input values as float64 crossed the WAN"
    assert found(wire, raw.pairs, 8) == 0, f"{where}: float32 row data crossed the WAN"
    numbers = decimal_numbers(b"\0".join(wire))
    written = _sorted_set(numbers.astype(np.float32).view(np.uint32))
    text_hits = int(_member(raw.f32, written).sum())
    text_chance = int(_member(raw.decoys, written).sum())
    assert text_hits <= 3 * text_chance + 10, f"{where}: input values crossed as text"
    chance = found(wire, raw.ulp_up, 4)
    hits = found(wire, raw.f32, 4)
    assert hits <= 3 * chance + 10, f"{where}: input values as float32 crossed the WAN"
    return (
        f"{where}: {sum(len(w) for w in wire)} bytes searched ({len(wire) - len(streams)} "
        f"inflated bodies); float64 matches {doubles} (decoys: {doubles_chance}); "
        f"{len(numbers)} numbers in text equal {text_hits} values as float32 "
        f"(decoys: {text_chance}); float32 4-byte matches {hits} (one ulp up: {chance})"
    )


def inflated(streams: list[bytes]) -> list[bytes]:
    """Every gzip member in the streams, decompressed (what the receiver read)."""
    out = []
    for stream in streams:
        start = stream.find(GZIP_MAGIC)
        while start >= 0:
            # three bytes may only look like a gzip header
            with contextlib.suppress(zlib.error):
                out.append(zlib.decompressobj(wbits=31).decompress(stream[start:]))
            start = stream.find(GZIP_MAGIC, start + 1)
    return out


def _distinctive(x: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Which values are distinctive: |v| >= 1e-3 and not, to 6 digits, a decimal of 4 digits
    or fewer (0.3749999 is 0.375 in any traffic that prints 0.37499999999999994)."""
    v = np.asarray(x, np.float64)
    big = np.abs(v) >= 1e-3
    magnitude = np.floor(np.log10(np.where(big, np.abs(v), 1.0)))
    unit4, unit6 = 10.0 ** (magnitude - 3), 10.0 ** (magnitude - 5)
    short = np.abs(np.round(v / unit4) * unit4 - v) < unit6 / 2
    return np.asarray(big & ~short)


def row_pairs(x: NDArray[np.float32], keep: NDArray[np.bool_] | None = None) -> NDArray[np.uint64]:
    """x[i, j] and x[i, j + 1] as float32, side by side: the 8 bytes of a row's run (only
    pairs of distinctive values, when `keep` says which: eight zero bytes are no evidence)."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    pairs = bits[:, :-1] | (bits[:, 1:] << np.uint64(32))
    if keep is not None:
        pairs = pairs[keep[:, :-1] & keep[:, 1:]]
    return _sorted_set(pairs.ravel())


def decimal_numbers(blob: bytes) -> NDArray[np.float64]:
    """Every number written as decimal text with 7 or more significant digits, sorted.

    A number as JSON, Python or C print it: an optional sign, `0` or digits not starting
    with 0, a point, digits; not inside a longer run of digits. So "0.45858" in an HTTP
    header's time "19:52:00.458586" (seconds with a leading zero) is not a number, and
    "1.1" in "HTTP/1.1" is too short to tell anything.
    """
    numbers = re.findall(rb"(?<![0-9.])-?(?:0|[1-9][0-9]*)\.[0-9]+", blob)
    digits = [t.lstrip(b"-").replace(b".", b"").lstrip(b"0") for t in numbers]
    return np.sort([float(t) for t, d in zip(numbers, digits, strict=True) if len(d) >= 7])


# between streams searched together: as float32 or float64 this is a NaN, never a pattern
SEPARATOR = b"\xff" * 8


def found(streams: list[bytes], patterns: NDArray[Any], width: int) -> int:
    """How many `width`-byte windows (at any offset) of the streams are in `patterns`.

    The streams are searched as one (a sort of the patterns per offset, not per stream:
    a capture holds hundreds of connections)."""
    dtype = np.uint64 if width == 8 else np.uint32
    raw = np.frombuffer(SEPARATOR.join(streams), np.uint8)
    total = 0
    for offset in range(width):
        usable = (len(raw) - offset) // width * width
        if usable <= 0:
            continue
        windows = raw[offset : offset + usable].view(dtype)
        total += int(_member(windows, patterns).sum())
    return total


def _sorted_set(values: NDArray[Any]) -> NDArray[Any]:
    """The distinct values, sorted (np.unique, without its hash table: 10x slower here)."""
    ordered = np.sort(np.asarray(values).ravel())
    if len(ordered) == 0:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _member(values: NDArray[Any], patterns: NDArray[Any]) -> NDArray[np.bool_]:
    """np.isin for sorted, unique `patterns`, without sorting them again at every call."""
    if len(patterns) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(patterns, values), len(patterns) - 1)
    return np.asarray(patterns[at] == values)
