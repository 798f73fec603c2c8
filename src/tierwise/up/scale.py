"""How much of the spec's traffic this machine can carry, measured, and the rates that follows.

A spec describes a fleet (12,500 vibration windows a second across three plants); this
machine has two cores for the cloud, every edge agent, every WAN proxy and every device.
`--scale auto` measures instead of guessing: for `CALIBRATE_S` seconds, `CONCURRENCY`
closed-loop clients send real rows through a throwaway edge agent as fast as it answers —
the whole path a request takes (HTTP, routing, ONNX Runtime, the outbox commit, the upload
of its event to the cloud) — or, for cloud-only runs, straight to the cloud's inference
endpoint. The run then offers `UTILIZATION` of that
rate in all, so queues stay short and latency stays a property of the system rather than of
an overloaded laptop. A feature whose scaled rate would leave it (almost) unexercised gets a
floor rate, and the run says so.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from tierwise.errors import UsageError
from tierwise.up.layout import FeatureRun

CALIBRATE_S = 2.0
CONCURRENCY = 8
# Of the measured capacity, for everything the run offers. The capacity is one agent's; the
# run adds an agent and a device process per site, the cloud and the proxies on the same
# cores: at 50% the factory's 20 ms safety stop missed 0.56% of its deadlines on two cores
# (CPU contention, not the system under test); at 30% the tails are the system's own.
UTILIZATION = 0.3
MIN_REQUESTS_PER_SITE = 5  # a feature gets at least this many requests per site in a run
MIN_RATE = 1.0  # requests/s per feature and site, the floor for rare features


@dataclass
class Scale:
    """The scale chosen, why, and the resulting rate of every feature at every site."""

    factor: float
    auto: bool
    spec_rate: float  # requests/s the spec asks for, all features and sites
    capacity: float | None  # measured requests/s through one edge agent (auto)
    rates: dict[str, dict[str, float]] = field(default_factory=dict)  # feature -> site -> rate
    boosted: list[str] = field(default_factory=list)  # features raised to the floor
    floor: float = MIN_RATE  # requests/s per feature and site; 0: the spec's proportions

    @property
    def offered(self) -> float:
        return sum(sum(r.values()) for r in self.rates.values())

    def explain(self) -> str:
        text = f"scale {self.factor:.4g}"
        if self.auto and self.capacity is not None:
            text += (
                f" (auto): the spec asks {self.spec_rate:,.1f} requests/s; this machine answered "
                f"{self.capacity:,.0f}/s through one edge agent ({CALIBRATE_S:g} s measured); "
                f"offering {UTILIZATION:.0%} of that"
            )
        elif self.auto:
            text += " (auto): the spec's rates fit this machine"
        else:
            text += " (--scale)"
        text += f" -> {self.offered:,.1f} requests/s in all"
        if self.boosted:
            text += f"; raised to the floor of {self.floor:.3g}/s per site: "
            text += ", ".join(self.boosted)
        elif self.floor == 0:
            text += "; the spec's proportions kept exactly (no floor for rare features)"
        return text


def parse_min_rate(text: str | None) -> float | None:
    """`--min-rate`: None keeps the default floor; otherwise requests/s per site, 0 or more."""
    if text is None:
        return None
    try:
        value = float(text.strip().removesuffix("/s"))
    except ValueError:
        raise UsageError(f"--min-rate {text!r}: expected requests/s like 1 or 0.2/s") from None
    if not 0 <= value < float("inf"):
        raise UsageError(f"--min-rate {text!r}: must be 0 (no floor) or more")
    return value


def parse_scale(text: str) -> float | None:
    """`auto` -> None; otherwise a factor in (0, 1]."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--scale {text!r}: expected auto or a factor like 0.05") from None
    if not 0 < value <= 1:
        raise UsageError(f"--scale {text!r}: must be in (0, 1] (1 = the spec's full rates)")
    return value


def choose_scale(
    runs: list[FeatureRun],
    duration: float,
    fixed: float | None,
    capacity: float | None,
    min_rate: float | None = None,
) -> Scale:
    """The scale (fixed, or from the measured capacity) and every feature's rate per site.

    A feature whose scaled rate falls below the floor is raised to it, so that its latency
    can be measured at all: `min_rate` requests/s per site when given (0: no floor, the
    spec's proportions exactly — what byte counts need, since they scale with traffic),
    else `MIN_RATE` or `MIN_REQUESTS_PER_SITE` in the run, whichever is higher.
    """
    spec_rate = sum(r.total_rate for r in runs)
    floor = max(MIN_RATE, MIN_REQUESTS_PER_SITE / duration) if min_rate is None else min_rate
    if fixed is not None:
        factor = fixed
    elif capacity is None or spec_rate <= 0:
        factor = 1.0
    else:
        # rare features take their floor rate out of the budget first
        budget = capacity * UTILIZATION
        floors = sum(
            floor for r in runs for s in r.sites if s.rate * min(1.0, budget / spec_rate) < floor
        )
        factor = min(1.0, max(budget - floors, budget * 0.1) / spec_rate)
    scale = Scale(factor, fixed is None, spec_rate, capacity, floor=floor)
    for r in runs:
        rates = {}
        for s in r.sites:
            rate = s.rate * factor
            if rate < floor:
                rate = floor
                if r.name not in scale.boosted:
                    scale.boosted.append(r.name)
            rates[s.site] = rate
        scale.rates[r.name] = rates
    return scale


def calibration_feature(runs: list[FeatureRun]) -> FeatureRun | None:
    """The busiest feature that goes over HTTP: the path the run leans on most."""
    served = [r for r in runs if r.uses_agent or r.mode == "direct"]
    return max(served, key=lambda r: r.total_rate) if served else None


def measure_capacity(url: str, headers: dict[str, str], bodies: list[bytes]) -> float:
    """Requests/s answered by POSTs of `bodies` to `url`, closed loop, over CALIBRATE_S."""
    return asyncio.run(_burst(url, headers, bodies))


def request_bodies(data: Path, stream: str | None) -> list[bytes]:
    """JSON bodies of single-row requests from a scenario's rows (for calibration)."""
    with np.load(data, allow_pickle=False) as npz:
        rows = [json.dumps(r.tolist()) for r in np.asarray(npz["x"], dtype=np.float32)[:256]]
    extra = f',"stream":"{stream}"' if stream else ""
    return [f'{{"inputs":[{row}]{extra}}}'.encode() for row in rows]


async def _burst(url: str, headers: dict[str, str], bodies: list[bytes]) -> float:
    done = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"Content-Type": "application/json", **headers}
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10.0) as client:
        # a short warm-up: the first requests open connections and fill caches
        await asyncio.gather(*(client.post(url, content=bodies[0]) for _ in range(CONCURRENCY)))
        end = time.monotonic() + CALIBRATE_S

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.monotonic() < end:
                response = await client.post(url, content=bodies[i % len(bodies)])
                done += response.status_code == 200
                i += CONCURRENCY

        start = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
        elapsed = time.monotonic() - start
    return done / elapsed if elapsed > 0 else 0.0
