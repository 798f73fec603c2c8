"""Human units in the spec (`20ms`, `4KB`, `20Mbps`, `$0.09/GB`, `20/s`) and their SI values.

Every quantity is stored in one base unit: seconds, bytes, bits per second, dollars,
events per second, FLOP, FLOP per second, or a fraction (0..1). A bare number is refused for
anything with a dimension (except 0): `deadline: 0.02` is ambiguous, `deadline: 20ms` is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

SECONDS_PER_MONTH = 30.44 * 24 * 3600  # mean Gregorian month
BYTES_PER_GB = 1e9


@dataclass(frozen=True)
class _Unit:
    """One kind of quantity: its spellings and the factor of each to the base unit."""

    kind: str
    example: str
    factors: dict[str, float]
    prefix: str = ""  # e.g. "$" for money
    base: str = ""  # how to print the base unit back

    def parse(self, raw: Any) -> float:
        if isinstance(raw, bool):
            raise ValueError(self._complaint(raw))
        if isinstance(raw, int | float):
            if raw == 0:
                return 0.0
            raise ValueError(self._complaint(raw))
        if not isinstance(raw, str):
            raise ValueError(self._complaint(raw))
        text = raw.strip().replace(" ", "")
        if self.prefix:
            if not text.startswith(self.prefix):
                raise ValueError(self._complaint(raw))
            text = text[len(self.prefix) :]
        match = re.fullmatch(_NUMBER + r"(.*)", text)
        if not match:
            raise ValueError(self._complaint(raw))
        value, unit = float(match.group(1)), match.group(2)
        factor = self._factor(unit)
        if factor is None:
            raise ValueError(self._complaint(raw))
        return value * factor

    def _factor(self, unit: str) -> float | None:
        if unit in self.factors:
            return self.factors[unit]
        lowered = {k.lower(): v for k, v in self.factors.items()}
        return lowered.get(unit.lower())

    def _complaint(self, raw: Any) -> str:
        shown = f'"{raw}"' if isinstance(raw, str) else repr(raw)
        return f"expected {self.kind} like {self.example}, got {shown}"

    def annotated(self) -> Any:
        """A pydantic type: parses human text, stores a float, documents itself in the schema."""
        units = ", ".join(sorted(self.factors, key=len)[:12])
        schema = {
            "anyOf": [
                {"type": "string", "description": f"{self.kind}, e.g. {self.example} ({units})"},
                {"const": 0},
            ],
            "examples": [self.example],
        }
        return Annotated[
            float,
            BeforeValidator(self.parse),
            WithJsonSchema(schema),
            PlainSerializer(lambda v: f"{self.prefix}{v:g}{self.base}", when_used="json"),
        ]


_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

DURATION = _Unit(
    "a duration",
    "20ms",
    {
        "ns": 1e-9,
        "us": 1e-6,
        "µs": 1e-6,
        "ms": 1e-3,
        "s": 1.0,
        "sec": 1.0,
        "min": 60.0,
        "h": 3600.0,
        "d": 86400.0,
        "day": 86400.0,
        "days": 86400.0,
        "week": 7 * 86400.0,
        "weeks": 7 * 86400.0,
    },
    base="s",
)

SIZE = _Unit(
    "a size",
    "4KB",
    {
        "B": 1.0,
        "KB": 1e3,
        "kB": 1e3,
        "MB": 1e6,
        "GB": 1e9,
        "TB": 1e12,
        "KiB": 1024.0,
        "MiB": 1024.0**2,
        "GiB": 1024.0**3,
        "TiB": 1024.0**4,
    },
    base="B",
)

BANDWIDTH = _Unit(
    "a bandwidth",
    "20Mbps",
    {"bps": 1.0, "kbps": 1e3, "Kbps": 1e3, "Mbps": 1e6, "Gbps": 1e9, "Tbps": 1e12},
    base="bps",
)

_PER = {
    "s": 1.0,
    "sec": 1.0,
    "min": 1 / 60,
    "h": 1 / 3600,
    "hour": 1 / 3600,
    "d": 1 / 86400,
    "day": 1 / 86400,
    "week": 1 / (7 * 86400),
    "month": 1 / SECONDS_PER_MONTH,
}

RATE = _Unit("a rate", "20/s", {f"/{k}": v for k, v in _PER.items()}, base="/s")

FLOPS = _Unit(
    "an amount of compute",
    "8.7GFLOP",
    {p + "FLOP": f for p, f in _SI.items()} | {p + "FLOPs": f for p, f in _SI.items()},
    base="FLOP",
)

COMPUTE = _Unit(
    "a compute capacity",
    "200GFLOP/s",
    {p + "FLOP/s": f for p, f in _SI.items()}
    | {p + "FLOPS": f for p, f in _SI.items()}
    | {p + "OPS": f for p, f in _SI.items()}
    | {p + "OP/s": f for p, f in _SI.items()},
    base="FLOP/s",
)

PRICE_PER_GB = _Unit(
    "a price per GB",
    "$0.09/GB",
    {"/GB": 1 / BYTES_PER_GB, "/TB": 1 / 1e12, "/MB": 1 / 1e6, "/GiB": 1 / 1024.0**3},
    prefix="$",
    base="/B",
)

PRICE_PER_MONTH = _Unit(
    "a price per month",
    "$150/month",
    {
        "/month": 1.0,
        "/mo": 1.0,
        "/year": 1 / 12,
        "/yr": 1 / 12,
        "/day": SECONDS_PER_MONTH / 86400,
        "/h": SECONDS_PER_MONTH / 3600,
    },
    prefix="$",
    base="/month",
)

PRICE_PER_HOUR = _Unit(
    "a price per hour",
    "$0.50/h",
    {"/h": 1.0, "/hour": 1.0, "/s": 3600.0, "/month": 3600 / SECONDS_PER_MONTH},
    prefix="$",
    base="/h",
)

PRICE_PER_CALL = _Unit(
    "a price per call",
    "$0.20/1k",
    {"/call": 1.0, "/1": 1.0, "/1k": 1e-3, "/1K": 1e-3, "/1M": 1e-6, "/1m": 1e-6},
    prefix="$",
    base="/call",
)


def _parse_fraction(raw: Any) -> float:
    """`99.5%` or 0.995 -> 0.995; anything else is refused."""
    complaint = f"expected a percentage like 99.5% or a fraction like 0.995, got {raw!r}"
    if isinstance(raw, bool):
        raise ValueError(complaint)
    if isinstance(raw, str):
        text = raw.strip()
        if text.endswith("%"):
            try:
                value = float(text[:-1]) / 100
            except ValueError:
                raise ValueError(complaint) from None
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(complaint) from None
    elif isinstance(raw, int | float):
        value = float(raw)
    else:
        raise ValueError(complaint)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a value between 0% and 100%, got {raw!r}")
    return value


Fraction = Annotated[
    float,
    BeforeValidator(_parse_fraction),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9.]+%$"},
                {"type": "number", "minimum": 0, "maximum": 1},
            ],
            "examples": ["99.5%"],
        }
    ),
]

if TYPE_CHECKING:  # to the type checker every quantity is the float it is stored as
    Duration: TypeAlias = float
    Size: TypeAlias = float
    Bandwidth: TypeAlias = float
    Rate: TypeAlias = float
    Flops: TypeAlias = float
    Compute: TypeAlias = float
    PricePerGB: TypeAlias = float
    PricePerMonth: TypeAlias = float
    PricePerHour: TypeAlias = float
    PricePerCall: TypeAlias = float
else:
    Duration = DURATION.annotated()
    Size = SIZE.annotated()
    Bandwidth = BANDWIDTH.annotated()
    Rate = RATE.annotated()
    Flops = FLOPS.annotated()
    Compute = COMPUTE.annotated()
    PricePerGB = PRICE_PER_GB.annotated()
    PricePerMonth = PRICE_PER_MONTH.annotated()
    PricePerHour = PRICE_PER_HOUR.annotated()
    PricePerCall = PRICE_PER_CALL.annotated()

PARSERS: dict[str, Callable[[Any], float]] = {
    "duration": DURATION.parse,
    "size": SIZE.parse,
    "bandwidth": BANDWIDTH.parse,
    "rate": RATE.parse,
    "flops": FLOPS.parse,
    "compute": COMPUTE.parse,
}


def fmt_duration(seconds: float) -> str:
    """Seconds -> the shortest readable text (`850us`, `12.3ms`, `4.1s`, `2.0h`)."""
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds == float("inf"):
        return "inf"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def fmt_size(n_bytes: float) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n_bytes >= factor:
            return f"{n_bytes / factor:.1f}{unit}"
    return f"{n_bytes:.0f}B"


def fmt_bandwidth(bits_per_s: float) -> str:
    for unit, factor in (("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3)):
        if bits_per_s >= factor:
            return f"{bits_per_s / factor:.1f}{unit}"
    return f"{bits_per_s:.0f}bps"


def fmt_share(share: float | None) -> str:
    """A share in [0, 1] as a percentage to a tenth (`93.7%`); `-` when there is none."""
    return "-" if share is None else f"{share:.1%}"


def fmt_money(dollars: float) -> str:
    if dollars >= 100:
        return f"${dollars:,.0f}"
    return f"${dollars:,.2f}"
