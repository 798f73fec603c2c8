"""Versioned migrations: a fresh database reaches the newest revision, a database made before
migrations is adopted with its rows, and replicas starting together migrate it once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tierwise.cloud.db import Database, metadata, open_database, rollouts, tokens
from tierwise.cloud.migrate import head_revision
from tierwise.errors import UsageError

from .conftest import DbTarget, postgres_schema
from .support import ADMIN_TOKEN, EPOCH, bearer

REVISIONS = ("0001", "0002", "0003", "0004", "0005")
NEWEST, ALL = REVISIONS[-1], ", ".join(REVISIONS)
REPLICAS = 4


def open_target(target: DbTarget) -> Database:
    return open_database(target.url, target.schema)


def test_a_fresh_database_gets_every_revision_once(db_target: DbTarget) -> None:
    first = open_target(db_target)
    first.dispose()
    assert first.migration is not None
    assert (first.migration.found, first.migration.applied) == (None, REVISIONS)
    again = open_target(db_target)
    try:
        assert again.migration is not None
        assert (again.migration.found, again.migration.applied) == (head_revision(), ())
    finally:
        again.dispose()


def test_the_migrated_schema_is_the_one_the_code_queries(db_target: DbTarget) -> None:
    """A column added to db.py without a revision (or the reverse) fails here."""
    db = open_target(db_target)
    try:
        with db.read() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        db.dispose()
    assert diff == []


def test_a_database_made_before_migrations_is_adopted_with_its_rows(db_target: DbTarget) -> None:
    """What `metadata.create_all` made before revision 0002's index: no `alembic_version`."""
    engine = sa.create_engine(
        db_target.url,
        connect_args={"options": f"-c search_path={db_target.schema}"} if db_target.schema else {},
    )
    with engine.begin() as conn:
        if db_target.schema:
            conn.exec_driver_sql(f"CREATE SCHEMA {db_target.schema}")
        metadata.create_all(conn)
        conn.exec_driver_sql("DROP INDEX one_running_rollout_per_package")
        conn.execute(
            tokens.insert().values(token_sha256="0" * 64, role="site", site="old", created_at=EPOCH)
        )
    engine.dispose()
    db = open_target(db_target)
    try:
        assert db.migration is not None
        assert (db.migration.found, db.migration.applied) == (None, REVISIONS)
        with db.read() as conn:
            assert conn.execute(sa.select(tokens.c.site)).scalars().all() == ["old"]
        running = {
            "package": "p",
            "version": 2,
            "canary_sites": [],
            "other_sites": [],
            "previous": {},
            "thresholds": {},
            "min_canary_requests": 0,
            "min_canary_feedback": 0,
            "bake_seconds": 0,
            "state": "canary",
            "reason": "",
            "created_at": EPOCH,
            "updated_at": EPOCH,
        }
        with db.write() as conn:
            conn.execute(rollouts.insert().values(**running))
        with pytest.raises(sa.exc.IntegrityError), db.write() as conn:  # 0002's index holds
            conn.execute(rollouts.insert().values(**running))
    finally:
        db.dispose()


def test_a_database_migrated_by_a_newer_tierwise_is_refused(db_target: DbTarget) -> None:
    open_target(db_target).dispose()
    db = open_target(db_target)
    with db.write() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    db.dispose()
    with pytest.raises(UsageError, match="migration 9999, which this tierwise does not know"):
        open_target(db_target)


@pytest.fixture
def fresh_schema() -> Iterator[DbTarget]:
    with postgres_schema() as target:
        yield target


def test_replicas_starting_together_migrate_once_and_all_serve(
    fresh_schema: DbTarget, tmp_path: Path
) -> None:
    env = dict(
        os.environ,
        TIERWISE_CLOUD_DB_URL=fresh_schema.url,
        TIERWISE_CLOUD_DB_SCHEMA=str(fresh_schema.schema),
        TIERWISE_CLOUD_DATA_DIR=str(tmp_path),
        TIERWISE_CLOUD_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    replicas = [
        subprocess.Popen(
            [sys.executable, "-m", "tierwise", "cloud", "--port", "0"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    try:
        said = [_until_listening(p) for p in replicas]
        applied = [line for lines in said for line in lines if "applied" in line]
        assert applied == [f"tierwise cloud: database schema at migration {NEWEST} (applied {ALL})"]
        for lines in said:
            url = re.search(r"http://\S+", lines[-1])
            assert url is not None, lines
            answer = httpx.get(url.group(0) + "/v1/sites", headers=bearer(ADMIN_TOKEN), timeout=10)
            assert answer.status_code == 200, answer.text
    finally:
        for p in replicas:
            p.terminate()
        for p in replicas:
            p.wait(timeout=30)
            assert p.stderr is not None
            p.stderr.close()


def _until_listening(proc: subprocess.Popen[str]) -> list[str]:
    """The replica's stderr lines up to the one that says where it listens."""
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line.strip())
        if "http://" in line:
            return lines
    raise AssertionError(f"replica exited with {proc.wait()}: {lines}")


def test_the_migrate_command_says_what_it_applied(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tierwise", "cloud", "migrate", "--data-dir", str(tmp_path)]
    said = [
        subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stderr
        for _ in range(2)
    ]
    assert said == [
        f"tierwise cloud: database schema at migration {NEWEST} (applied {ALL})\n",
        f"tierwise cloud: database schema at migration {NEWEST} (nothing to apply)\n",
    ]
