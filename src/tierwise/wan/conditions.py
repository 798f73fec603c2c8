"""What the emulated WAN does to traffic: round-trip delay, loss, outages — as plain values.

The delay of one request/response exchange is drawn from a log-normal distribution fitted to
the link's p50 and p99 round-trip times (a common fit for Internet RTTs: a floor-free,
right-skewed tail). Loss is per chunk of bytes the proxy forwards, not per IP packet: an
HTTP request or response of a few KB is one chunk, so `loss=5%` means one exchange in about
twenty meets a lost segment. How a loss shows is a `LossMode`; how an outage shows is an
`OutageMode`. Outages run on a schedule (offsets from the proxy's start) or by hand.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tierwise.spec.model import Link

Z_99 = 2.3263478740408408  # standard normal quantile at 0.99
LINUX_TCP_RTO_MIN_S = 0.2  # the first retransmission timeout Linux uses on a fresh connection
MAX_RETRANSMITS = 6  # beyond this a real stack would give up; we stop doubling there


class LossMode(StrEnum):
    """How a lost segment shows to the application.

    STALL: as TCP shows it — the bytes arrive late, after a retransmission timeout (doubling
    for every further loss of the same chunk). The connection survives.
    RESET: the connection is reset (RST to both sides), as a middlebox dropping state does.
    """

    STALL = "stall"
    RESET = "reset"


class OutageMode(StrEnum):
    """How an outage shows to the application.

    BLACKHOLE: packets vanish — new connections open (the local kernel accepts them) but no
    byte crosses until the outage ends; bytes sent meanwhile arrive after it, as TCP
    retransmissions would deliver them, even if the sender has given up and closed.
    REFUSE: the route is gone — open connections are reset at the outage's start and new ones
    are reset at once.
    """

    BLACKHOLE = "blackhole"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Outage:
    """An outage `duration_s` long, starting `start_s` after the proxy starts."""

    start_s: float
    duration_s: float

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.start_s + self.duration_s


@dataclass(frozen=True)
class WanConditions:
    """The impairments one proxy applies; the zero value is a perfect wire."""

    rtt_p50_s: float = 0.0
    rtt_p99_s: float = 0.0
    loss: float = 0.0
    loss_mode: LossMode = LossMode.STALL
    retransmit_timeout_s: float = LINUX_TCP_RTO_MIN_S
    outages: tuple[Outage, ...] = field(default_factory=tuple)
    outage_mode: OutageMode = OutageMode.BLACKHOLE

    def __post_init__(self) -> None:
        if self.rtt_p50_s < 0 or self.rtt_p99_s < 0:
            raise ValueError("round-trip times must be 0 or more")
        if self.rtt_p99_s and self.rtt_p99_s < self.rtt_p50_s:
            raise ValueError("rtt p99 must be at least rtt p50")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("loss must be in [0, 1)")
        for o in self.outages:
            if o.start_s < 0 or o.duration_s <= 0:
                raise ValueError("an outage needs start >= 0 and a positive duration")

    @classmethod
    def from_link(cls, link: Link, outages: tuple[Outage, ...] = ()) -> WanConditions:
        """The conditions of a spec link (its RTT p50/p99 and loss), with an outage schedule."""
        return cls(rtt_p50_s=link.rtt_p50, rtt_p99_s=link.rtt_p99, loss=link.loss, outages=outages)

    def to_args(self) -> list[str]:
        """The same conditions as arguments of `python -m tierwise.wan` (for a supervisor)."""
        args = ["--rtt", f"{self.rtt_p50_s * 1000:g}ms/{self.rtt_p99_s * 1000:g}ms"]
        args += ["--loss", f"{self.loss:g}", "--loss-mode", self.loss_mode.value]
        if self.outages:
            spans = ",".join(f"{o.duration_s:g}s@{o.start_s:g}s" for o in self.outages)
            args += ["--outages", spans]
        return [*args, "--outage-mode", self.outage_mode.value]

    @property
    def sigma(self) -> float:
        """Log-normal shape fitted so that the 99th percentile lands on rtt_p99."""
        if self.rtt_p50_s <= 0 or self.rtt_p99_s <= self.rtt_p50_s:
            return 0.0
        return math.log(self.rtt_p99_s / self.rtt_p50_s) / Z_99

    def sample_rtt(self, rng: random.Random) -> float:
        """One exchange's added round-trip time, in seconds."""
        if self.rtt_p50_s <= 0:
            return 0.0
        return self.rtt_p50_s * math.exp(self.sigma * rng.gauss(0.0, 1.0))

    def sample_retransmit_delay(self, rng: random.Random) -> float:
        """Extra delay from losses of one chunk under STALL: 0, RTO, RTO+2·RTO, ..."""
        extra, rto = 0.0, self.retransmit_timeout_s
        for _ in range(MAX_RETRANSMITS):
            if rng.random() >= self.loss:
                break
            extra += rto
            rto *= 2
        return extra

    def scheduled_outage(self, t: float) -> bool:
        """Whether the schedule has the link down `t` seconds after the start."""
        return any(o.covers(t) for o in self.outages)


_SECONDS = {"ms": 1e-3, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}


def parse_seconds(text: str) -> float:
    """`60ms`, `2.5s`, `2min` -> seconds (for the command line of the proxy)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|min|m|h)\s*", text)
    if not match:
        raise ValueError(f"expected a duration like 60ms or 2min, got {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_outages(text: str) -> tuple[Outage, ...]:
    """`30s@60s,2min@5min` (duration @ start) -> outages sorted by start."""
    outages = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "@" not in part:
            raise ValueError(f"expected an outage like 30s@60s (duration@start), got {part!r}")
        duration, start = part.split("@", 1)
        outages.append(Outage(start_s=parse_seconds(start), duration_s=parse_seconds(duration)))
    return tuple(sorted(outages, key=lambda o: o.start_s))
