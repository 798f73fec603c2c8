"""The cloud service: package registry, staged rollouts, cloud inference, telemetry store.

`create_app(Settings(...))` builds the FastAPI app; `tierwise cloud` serves it with uvicorn.
docs/cloud.md explains how to run it, docs/api.md every endpoint.
"""

from __future__ import annotations

from tierwise.cloud.app import create_app
from tierwise.cloud.settings import Settings

__all__ = ["Settings", "create_app"]
