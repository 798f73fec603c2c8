"""The cloud service: package registry, staged rollouts, cloud inference, telemetry store.

`create_app(Settings(...))` builds the FastAPI app; `tierwise cloud` serves it with uvicorn.
docs/cloud.md explains how to run it, docs/api.md every endpoint.

Both names load lazily: the CLI imports `tierwise.cloud.commands` on every start, and
that must not pull in FastAPI and SQLAlchemy (an edge install has no SQLAlchemy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierwise.lazy import lazy_names

if TYPE_CHECKING:
    from tierwise.cloud.app import create_app
    from tierwise.cloud.settings import Settings

__all__ = ["Settings", "create_app"]

__getattr__, __dir__ = lazy_names(__name__, {"Settings": "settings", "create_app": "app"})
