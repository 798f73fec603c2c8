"""Fixtures for the cloud service: the same tests run on SQLite (WAL) and on PostgreSQL.

PostgreSQL is the real server at 127.0.0.1:5432 (database `test`); each test gets its own
schema, dropped afterwards. When the server is unreachable the PostgreSQL half is skipped,
unless CI is set: then it fails, because CI must prove both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.package.support import Keys, make_keys

from tierwise.cloud import Settings, create_app
from tierwise.cloud.auth import issue_token
from tierwise.cloud.db import Database, open_database
from tierwise.rules.clock import VirtualClock

from .support import ADMIN_TOKEN, EPOCH, Cloud, ServerThread, bearer

PG_USERS = ("postgres", "root")


def _postgres_url() -> str | None:
    """The first user that can log in to the local `test` database, or None."""
    for user in PG_USERS:
        url = f"postgresql+psycopg://{user}@127.0.0.1:5432/test"
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return url
        except sa.exc.OperationalError:
            continue
        finally:
            engine.dispose()
    return None


_PG_URL: list[str | None] = []


def postgres_url() -> str:
    """The PostgreSQL URL, or skip (fail under CI) when the server cannot be reached."""
    if not _PG_URL:
        _PG_URL.append(_postgres_url())
    url = _PG_URL[0]
    if url is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432/test is unreachable and CI is set")
        pytest.skip("PostgreSQL at 127.0.0.1:5432/test is unreachable (set CI=true to fail)")
    return url


@dataclass
class DbTarget:
    """Where a test's database lives: a URL plus, for PostgreSQL, a private schema."""

    url: str
    schema: str | None


@pytest.fixture(params=["sqlite", "postgresql"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbTarget]:
    if request.param == "sqlite":
        yield DbTarget(f"sqlite:///{tmp_path / 'cloud.db'}", None)
        return
    with postgres_schema() as target:
        yield target


@contextmanager
def postgres_schema() -> Iterator[DbTarget]:
    """A schema name of its own on the PostgreSQL server (not created: the code under test
    creates it), dropped afterwards."""
    url = postgres_url()
    schema = f"tw_test_{uuid.uuid4().hex[:12]}"
    try:
        yield DbTarget(url, schema)
    finally:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        engine.dispose()


@pytest.fixture
def signer(tmp_path: Path) -> Keys:
    """The release key the registry trusts."""
    return make_keys(tmp_path / "keys")


@pytest.fixture
def settings(db_target: DbTarget, tmp_path: Path, signer: Keys) -> Settings:
    return Settings.from_env(
        {},
        db_url=db_target.url,
        trusted_keys=(signer.public,),
        db_schema=db_target.schema,
        data_dir=tmp_path / "data",
        max_body_bytes=1024 * 1024,
        max_package_bytes=4 * 1024 * 1024,
        evaluate_interval_s=0.2,
    ).model_copy(update={"admin_token_sha256": _sha(ADMIN_TOKEN)})


def _sha(token: str) -> str:
    from tierwise.cloud.settings import hash_token

    return hash_token(token)


@pytest.fixture
def clock() -> VirtualClock:
    """The cloud's time: no test waits for it to pass, each advances it."""
    return VirtualClock(EPOCH)


@pytest.fixture
def cloud(settings: Settings, clock: VirtualClock) -> Iterator[Cloud]:
    app = create_app(settings, clock)
    db = app.state.cloud.db
    token_a = issue_token(db, "a", clock.now())
    token_b = issue_token(db, "b", clock.now())
    with TestClient(app) as client:
        yield Cloud(
            client=client,
            db=db,
            settings=settings,
            clock=clock,
            admin=bearer(ADMIN_TOKEN),
            site_a=bearer(token_a),
            site_b=bearer(token_b),
        )


@pytest.fixture
def database(db_target: DbTarget) -> Iterator[Database]:
    db = open_database(db_target.url, db_target.schema)
    yield db
    db.dispose()


@pytest.fixture
def live(cloud: Cloud) -> Iterator[str]:
    """The same app as `cloud`, also served by a real uvicorn on loopback; yields its URL.

    The test client already runs the app's lifespan (its rollout ticker): not a second time.
    """
    with ServerThread(cloud.client.app, lifespan="off") as server:  # type: ignore[arg-type]
        yield server.url


@pytest.fixture
def wine_v1(cloud: Cloud, signer: Keys, tmp_path: Path) -> str:
    """Version 1 of the `wine` package in the registry; its archive's sha256."""
    from tierwise.package.archive import pack_archive

    from .packages import build

    blob = pack_archive(build(tmp_path / "wine-1", signer, "wine", 1))
    response = cloud.client.post(
        "/v1/packages", content=blob, headers=cloud.admin | {"Content-Type": "application/gzip"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["sha256"])
