"""The in-memory twin of the cloud, for unit tests of the agent: same interface, no sockets.

It keeps what the real service keeps (deployments, package archives, telemetry deduplicated by
(site, stream, seq), status reports) with the same semantics, and can be made slow or down
to exercise the agent's fallbacks. Acceptance tests use the real service instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from tierwise.edge.link import CloudLink, CloudRefusedError
from tierwise.errors import LinkError
from tierwise.wire import (
    Deployment,
    InferResponse,
    SiteStatus,
    StatusAck,
    TelemetryAck,
    TelemetryBatch,
    TelemetryEvent,
)

InferFn = Callable[[list[list[float]]], list[list[float]]]


@dataclass
class InMemoryCloud:
    """The cloud's state, shared by every `InMemoryCloudLink` made from it."""

    deployments: dict[str, Deployment] = field(default_factory=dict)
    packages: dict[tuple[str, int], bytes] = field(default_factory=dict)
    models: dict[str, tuple[str, int, InferFn]] = field(default_factory=dict)
    telemetry: dict[tuple[str, str, int], TelemetryEvent] = field(default_factory=dict)
    duplicates: int = 0
    statuses: list[tuple[str, SiteStatus]] = field(default_factory=list)
    down: bool = False
    delay_s: float = 0.0  # added to every call, as a round trip would be

    def link(self) -> InMemoryCloudLink:
        return InMemoryCloudLink(self)

    def stream(self, site: str, stream: str) -> list[TelemetryEvent]:
        """A stream's events in seq order, as GET /v1/sites/{site}/telemetry gives them."""
        keys = sorted(k for k in self.telemetry if k[0] == site and k[1] == stream)
        return [self.telemetry[k] for k in keys]


class InMemoryCloudLink(CloudLink):
    """`CloudLink` to an `InMemoryCloud`."""

    def __init__(self, cloud: InMemoryCloud) -> None:
        self.cloud = cloud
        self.calls = 0

    async def _travel(self, what: str) -> None:
        self.calls += 1
        if self.cloud.delay_s > 0:
            await asyncio.sleep(self.cloud.delay_s)
        if self.cloud.down:
            raise LinkError(f"cloud {what}: unreachable (in-memory cloud is down)")

    async def deployment(
        self, site: str, etag: str | None, wait_s: float = 0.0
    ) -> Deployment | None:
        # Answers at once whatever `wait_s` says, and leaves `long_polls` False: the agent
        # then paces its polls by `poll_interval_s`, as with a cloud that does not hold them.
        await self._travel("deployment")
        current = self.cloud.deployments.get(site)
        if current is None:
            return Deployment(site=site, features={}, etag="empty")
        return None if current.etag == etag else current

    async def package(self, name: str, version: int) -> bytes:
        await self._travel("package")
        try:
            return self.cloud.packages[(name, version)]
        except KeyError:
            raise CloudRefusedError(404, f"no package {name} v{version}") from None

    async def infer(self, feature: str, inputs: list[list[float]]) -> InferResponse:
        await self._travel("infer")
        if feature not in self.cloud.models:
            raise CloudRefusedError(404, f"no cloud model for {feature}")
        name, version, fn = self.cloud.models[feature]
        return InferResponse(outputs=fn(inputs), model=name, version=version)

    async def telemetry(self, site: str, batch: bytes) -> TelemetryAck:
        await self._travel("telemetry")
        events = TelemetryBatch.model_validate_json(batch).events  # as strict as the cloud
        accepted = duplicates = 0
        high: dict[str, int] = {}
        for event in events:
            key = (site, event.stream, event.seq)
            if key in self.cloud.telemetry:
                duplicates += 1
            else:
                self.cloud.telemetry[key] = event
                accepted += 1
            high[event.stream] = max(high.get(event.stream, 0), event.seq)
        self.cloud.duplicates += duplicates
        return TelemetryAck(accepted=accepted, duplicates=duplicates, high_water=high)

    async def status(self, site: str, report: SiteStatus) -> StatusAck:
        await self._travel("status")
        self.cloud.statuses.append((site, report))
        current = self.cloud.deployments.get(site)
        return StatusAck(etag=current.etag if current else "empty")
