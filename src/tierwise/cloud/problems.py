"""Refusals the cloud's own logic raises, each carrying the HTTP status it becomes.

Library functions (registry, rollouts, deployments) raise these instead of FastAPI's
HTTPException so they stay usable outside a request; `create_app` turns them into
`{"detail": message}` with their status.
"""

from __future__ import annotations


class CloudRefusalError(Exception):
    """A request the cloud understood and refuses; `status` is the HTTP code it becomes."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(CloudRefusalError):
    status = 404


class ConflictError(CloudRefusalError):
    """The request clashes with the current state (a version not newer, a rollout running)."""

    status = 409


class UnprocessableError(CloudRefusalError):
    """Well-formed, but refers to something unusable (a package that fails verification)."""

    status = 422
