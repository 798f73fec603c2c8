"""Whether the cloud looks reachable right now, from what recent calls to it saw.

A circuit breaker: after `failures_to_open` failures in a row the cloud counts as down, and
no request waits on it; after a cool-down (doubling, capped) one probe may go through, and a
success closes the circuit again. Every call to the cloud — escalations, telemetry, polls —
reports here, so an outage seen by the uploader also spares the next escalation its wait.
"""

from __future__ import annotations

from tierwise.rules.clock import Clock

DEFAULT_FAILURES_TO_OPEN = 3
DEFAULT_COOLDOWN_S = 0.5
DEFAULT_MAX_COOLDOWN_S = 5.0


class CloudHealth:
    """Closed (up), open (down until the cool-down ends) or half-open (one probe allowed)."""

    def __init__(
        self,
        clock: Clock,
        failures_to_open: int = DEFAULT_FAILURES_TO_OPEN,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        max_cooldown_s: float = DEFAULT_MAX_COOLDOWN_S,
    ) -> None:
        self.clock = clock
        self.failures_to_open = failures_to_open
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.consecutive_failures = 0
        self._cooldown_s = cooldown_s
        self._open_until: float | None = None
        self._probing = False

    @property
    def down(self) -> bool:
        """The circuit is open: the cloud failed repeatedly and the cool-down is running."""
        return self._open_until is not None and self.clock.now() < self._open_until

    def allow(self) -> bool:
        """May a request go to the cloud now? After a cool-down, one probe at a time."""
        if self._open_until is None:
            return True
        if self.clock.now() < self._open_until or self._probing:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        self.consecutive_failures = 0
        self._open_until = None
        self._probing = False
        self._cooldown_s = self.base_cooldown_s

    def failed(self) -> None:
        self.consecutive_failures += 1
        if self._probing or self.consecutive_failures >= self.failures_to_open:
            if self._open_until is not None:  # a failed probe: wait longer next time
                self._cooldown_s = min(self._cooldown_s * 2, self.max_cooldown_s)
            self._open_until = self.clock.now() + self._cooldown_s
            self._probing = False
