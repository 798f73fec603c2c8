"""The outbox: telemetry waits here while the WAN is down, within a byte cap, drops counted.

Two views of the same rules:

- per item (the agent): `admit(depth, size, cap, policy)` says whether a new item is kept
  and how many bytes of the oldest items must go to make room;
- per time step (the simulator, fluid): `outbox_step(depth, incoming, capacity, cap, policy)`
  sends what the link can carry, then drops what exceeds the cap, and reports both.

The drop policy decides *which* bytes go when the cap is reached, never *how many*:
`drop-oldest` keeps the freshest data (a dashboard wants the present), `drop-newest` keeps
the earliest (an audit trail wants no gap in the past). Every dropped byte is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from tierwise.rules._types import Floats, scalar_or_array


class DropPolicy(StrEnum):
    """Which bytes the outbox gives up when it is full."""

    DROP_OLDEST = "drop-oldest"
    DROP_NEWEST = "drop-newest"


def admit(depth: Floats, size: Floats, cap: Floats, policy: DropPolicy) -> tuple[Any, Any]:
    """(keep the new item, bytes of the oldest items to evict first) for items of `size`.

    drop-newest refuses an item that does not fit; drop-oldest keeps every item that fits
    the cap on its own and evicts from the head to make room.
    """
    over = np.maximum(np.add(depth, size) - np.asarray(cap), 0.0)
    if policy is DropPolicy.DROP_NEWEST:
        keep = over <= 0
        evict = np.zeros_like(over)
    else:
        keep = np.less_equal(size, cap)
        evict = np.where(keep, np.minimum(over, depth), 0.0)
    return scalar_or_array(keep, depth, size, cap), scalar_or_array(evict, depth, size, cap)


@dataclass(frozen=True)
class OutboxStep:
    """One time step of a fluid outbox: bytes left queued, sent, dropped, and taken in."""

    depth: Any
    sent: Any
    dropped: Any
    accepted: Any  # bytes of this step's arrivals that entered the queue (FIFO bookkeeping)


def outbox_step(
    depth: Floats, incoming: Floats, capacity: Floats, cap: Floats, policy: DropPolicy
) -> OutboxStep:
    """Advance an outbox (or an array of them) by one step.

    `incoming` bytes arrive during the step, the link can carry `capacity` bytes in it (0
    while down). Sending goes first (oldest bytes first), then whatever exceeds `cap` is
    dropped: from the head under drop-oldest, from this step's arrivals under drop-newest.
    """
    depth = np.asarray(depth, dtype=np.float64)
    incoming = np.asarray(incoming, dtype=np.float64)
    total = depth + incoming
    sent = np.minimum(total, np.maximum(capacity, 0.0))
    left = total - sent
    dropped = np.maximum(left - np.asarray(cap), 0.0)
    if policy is DropPolicy.DROP_NEWEST:
        accepted = incoming - np.minimum(dropped, incoming)
    else:
        accepted = incoming
    inputs = (depth, incoming, capacity, cap)
    return OutboxStep(
        depth=scalar_or_array(left - dropped, *inputs),
        sent=scalar_or_array(sent, *inputs),
        dropped=scalar_or_array(dropped, *inputs),
        accepted=scalar_or_array(accepted, *inputs),
    )
