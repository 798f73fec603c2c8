"""Each site's outbox over the run: telemetry in, what the uplink leaves out, the cap's drops.

The queue itself is the shared rule (`rules.outbox.outbox_step`), stepped for all sites at
once. Requests go first on the uplink (they have a deadline); telemetry gets the rest of
the link's usable bandwidth, and nothing while the WAN is down.
"""

from __future__ import annotations

import numpy as np

from tierwise.rules import DropPolicy
from tierwise.rules._types import FloatArray
from tierwise.rules.outbox import outbox_step


class Outboxes:
    """Per-step outbox figures of every site: depth, sent, dropped, accepted bytes."""

    def __init__(self, sites: int, steps: int, step: float, cap: float, policy: DropPolicy):
        self.step, self.cap, self.policy = step, cap, policy
        shape = (sites, steps)
        self.depth_at = np.zeros(shape)
        self.sent = np.zeros(shape)
        self.dropped = np.zeros(shape)
        self.accepted = np.zeros(shape)
        self._depth = np.zeros(sites)

    def advance(self, b0: int, incoming: FloatArray, capacity: FloatArray) -> None:
        """Run steps b0.. with `incoming` and `capacity` bytes per (site, step)."""
        depth = self._depth
        for k in range(incoming.shape[1]):
            out = outbox_step(
                depth, incoming[:, k], np.maximum(capacity[:, k], 0.0), self.cap, self.policy
            )
            depth = np.asarray(out.depth, dtype=np.float64)
            self.depth_at[:, b0 + k] = depth
            self.sent[:, b0 + k] = out.sent
            self.dropped[:, b0 + k] = out.dropped
            self.accepted[:, b0 + k] = out.accepted
        self._depth = depth

    def max_delay(self, site: int) -> float:
        """Longest FIFO wait of a delivered byte, from the cumulative in and out curves."""
        accepted = np.concatenate([[0.0], np.cumsum(self.accepted[site])])
        gone = self.sent[site]
        if self.policy is DropPolicy.DROP_OLDEST:
            gone = gone + self.dropped[site]  # drops leave from the head
        head = np.concatenate([[0.0], np.cumsum(gone)])[:-1]  # queue position at each step
        sending = np.flatnonzero(self.sent[site] > 0)
        if len(sending) == 0:
            return 0.0
        # the oldest byte sent in step k is the one right after `head[k]`: it entered in the
        # step where the accepted curve passed that position
        first = head[sending]
        j = np.clip(np.searchsorted(accepted, first, side="right"), 1, len(accepted) - 1)
        rise = np.maximum(accepted[j] - accepted[j - 1], 1e-300)
        entered = (j - 1 + np.clip((first - accepted[j - 1]) / rise, 0.0, 1.0)) * self.step
        return float(np.maximum(sending * self.step - entered, 0.0).max())
