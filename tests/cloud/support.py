"""What cloud tests share besides fixtures: the `Cloud` handle and header helpers."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tierwise.cloud import Settings
from tierwise.cloud.db import Database
from tierwise.rules.clock import VirtualClock

ADMIN_TOKEN = "tw_admin-token-for-tests-only"
EPOCH = 1_700_000_000.0  # 2023-11-14 in epoch seconds: where test clocks start


@dataclass
class Cloud:
    """A running app plus tokens: admin, and sites `a` and `b`; its time moves with `clock`."""

    client: TestClient
    db: Database
    settings: Settings
    clock: VirtualClock
    admin: dict[str, str]
    site_a: dict[str, str]
    site_b: dict[str, str]


def register_rows(db: Database, package: str, versions: tuple[int, ...]) -> None:
    """Registry rows for `package`, for tests of what reads them (rollouts read the hash and
    the variant list, deployments the hash), not of the registry or the archive."""
    from tierwise.cloud.db import packages

    with db.write() as conn:
        for version in versions:
            conn.execute(
                packages.insert().values(
                    name=package,
                    version=version,
                    sha256=f"{version:064x}",
                    size=1,
                    manifest={"variants": [{"name": "fp32"}]},
                    uploaded_at=EPOCH,
                )
            )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class ServerThread:
    """A real uvicorn serving `app` on 127.0.0.1 (a free port) while the `with` block runs."""

    def __init__(self, app: FastAPI, lifespan: str = "on") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, ws="none")
        self.server = _AnnouncingServer(config)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:  # a server that failed before its startup must not leave __enter__ waiting
            self.server.startup_over.set()

    def __enter__(self) -> ServerThread:
        self.thread.start()
        if not self.server.startup_over.wait(10) or not self.server.started:
            raise RuntimeError("uvicorn did not start (it failed, or took over 10 s)")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class _AnnouncingServer(uvicorn.Server):
    """uvicorn that tells another thread when its startup is over, successful or not."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_over = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.startup_over.set()
