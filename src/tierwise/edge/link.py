"""The edge's only way to the cloud: one interface, an HTTP implementation and an in-memory twin.

Every call is started by the edge (gateways sit behind NAT). Failures come in two kinds
that are handled differently: the cloud could not be reached or did not answer in time
(`LinkError`, retried with backoff, answered locally meanwhile), and the cloud answered
"no" (`CloudAuthError`, a `VerificationError`, for 401/403; `CloudRefusedError` for any other
4xx), which retrying will not fix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from tierwise.errors import EXIT_REFUSED, TierwiseError, VerificationError
from tierwise.wire import (
    Deployment,
    InferResponse,
    SiteStatus,
    StatusAck,
    TelemetryAck,
)


class CloudRefusedError(TierwiseError):
    """The cloud answered, and the answer was no (a 4xx other than 401/403)."""

    exit_code = EXIT_REFUSED

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        super().__init__(f"cloud refused ({status}): {detail}")


class CloudAuthError(VerificationError):
    """The cloud refused this site's token (401) or its right to the resource (403)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        super().__init__(f"cloud refused the site token ({status}): {detail}")


class CloudLink(ABC):
    """What the agent asks of the cloud. Implementations raise `LinkError` on transport
    failure or timeout, `CloudAuthError` / `CloudRefusedError` when the cloud says no."""

    # True once the cloud said it holds deployment polls (long-polling): the agent may then
    # poll again as soon as an answer comes, since an unchanged answer takes `wait_s` to come.
    long_polls: bool = False

    @abstractmethod
    async def deployment(
        self, site: str, etag: str | None, wait_s: float = 0.0
    ) -> Deployment | None:
        """What the site should run; None when it is unchanged since `etag`. With `wait_s`, a
        cloud that long-polls answers an unchanged deployment only after up to that long."""

    @abstractmethod
    async def package(self, name: str, version: int) -> bytes:
        """A package archive (tar.gz), as uploaded to the registry."""

    @abstractmethod
    async def infer(self, feature: str, inputs: list[list[float]]) -> InferResponse:
        """The cloud model's answer; the caller bounds the wait (asyncio cancellation)."""

    @abstractmethod
    async def telemetry(self, site: str, batch: bytes) -> TelemetryAck:
        """Upload a batch — the JSON of a `TelemetryBatch`, assembled from the outbox's stored
        text without re-parsing it (see `uploader.batch_json`); idempotent by (site, stream,
        seq)."""

    @abstractmethod
    async def status(self, site: str, report: SiteStatus) -> StatusAck:
        """Report installed versions, health and counters."""

    async def warm(self) -> None:  # noqa: B027 (optional hook, nothing to prepare by default)
        """Prepare what the first escalation would otherwise set up inside its deadline."""

    async def close(self) -> None:  # noqa: B027 (optional hook, nothing to release by default)
        """Release connections."""
