"""What cloud tests share besides fixtures: the `Cloud` handle and header helpers."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from tierwise.cloud import Settings
from tierwise.cloud.db import Database

ADMIN_TOKEN = "tw_admin-token-for-tests-only"


@dataclass
class Cloud:
    """A running app plus tokens: admin, and sites `a` and `b`."""

    client: TestClient
    db: Database
    settings: Settings
    admin: dict[str, str]
    site_a: dict[str, str]
    site_b: dict[str, str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
