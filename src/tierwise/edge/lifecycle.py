"""The agent's lifecycle: STARTING → SERVING → DRAINING → STOPPED, and nothing else.

Devices are served only while SERVING. DRAINING refuses new requests (503) while the ones in
flight finish and the outbox flushes what it can; STOPPED is final. A transition not in
`ALLOWED` is a bug and raises, so the state can never go backwards.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class AgentState(StrEnum):
    """Where the agent is in its life; shown at GET /v1/state and /healthz."""

    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    STOPPED = "stopped"


ALLOWED: dict[AgentState, frozenset[AgentState]] = {
    AgentState.STARTING: frozenset({AgentState.SERVING, AgentState.DRAINING}),
    AgentState.SERVING: frozenset({AgentState.DRAINING}),
    AgentState.DRAINING: frozenset({AgentState.STOPPED}),
    AgentState.STOPPED: frozenset(),
}


class Lifecycle:
    """The current state and the checked way to move it on."""

    def __init__(self) -> None:
        self._state = AgentState.STARTING

    @property
    def state(self) -> AgentState:
        return self._state

    @property
    def serving(self) -> bool:
        return self._state is AgentState.SERVING

    def move(self, to: AgentState) -> None:
        if to not in ALLOWED[self._state]:
            raise RuntimeError(f"agent cannot go from {self._state} to {to}")
        self._state = to


class DeviceAdapter(Protocol):
    """A way devices reach the agent beside its HTTP API (e.g. MQTT, edge/mqtt.py): started
    once the agent serves, stopped before the agent drains its outbox."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
