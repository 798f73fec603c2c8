"""What every request handler shares: settings, database, clock, metrics, loaded cloud models,
and the wake-ups of held deployment polls.

One `CloudContext` per app, built by `create_app` and found through `get_context`, the
FastAPI dependency tests can replace with `app.dependency_overrides`. Handlers read time from
`clock` (epoch seconds: a `WallClock`, or a test's `VirtualClock`), never from `time` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from fastapi import Request

if TYPE_CHECKING:
    from tierwise.cloud.changes import DeploymentChanges
    from tierwise.cloud.db import Database
    from tierwise.cloud.metrics import CloudMetrics
    from tierwise.cloud.model_cache import ModelCache
    from tierwise.cloud.settings import Settings
    from tierwise.rules.clock import Clock


@dataclass
class CloudContext:
    settings: Settings
    db: Database
    clock: Clock
    metrics: CloudMetrics
    models: ModelCache
    changes: DeploymentChanges  # wakes held deployment polls
    trusted_keys: dict[str, Any] = field(default_factory=dict)  # key id -> public key
    # (package, version) -> its manifest's drift reference: a version never changes once
    # registered, so any replica may keep what it read (cloud/drift.py)
    drift_references: dict[tuple[str, int], Any] = field(default_factory=dict)


def get_context(request: Request) -> CloudContext:
    """FastAPI dependency: the context of the app serving this request."""
    return cast(CloudContext, request.app.state.cloud)
