"""The database layer: WAL on SQLite, a private schema on PostgreSQL, concurrent writers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from tierwise.cloud.db import Database, open_database, telemetry
from tierwise.cloud.telemetry import ingest, read_stream
from tierwise.errors import UsageError
from tierwise.wire import TelemetryEvent

from .support import EPOCH


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'sub' / 'cloud.db'}")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()


def test_concurrent_batches_from_many_threads_all_land_once(database: Database) -> None:
    # Eight uploaders racing with overlapping retries: no "database is locked", no loss.
    def upload(worker: int) -> int:
        accepted = 0
        for start in range(0, 400, 100):
            events = [
                TelemetryEvent(stream=f"s{worker % 4}", seq=seq, ts=0.0, kind="k")
                for seq in range(start, start + 150)
            ]
            accepted += ingest(database, "a", events, EPOCH).accepted
        return accepted

    with ThreadPoolExecutor(8) as pool:
        accepted = sum(pool.map(upload, range(8)))
    assert accepted == 4 * 450  # four streams, seqs 0..449 each, whoever stored them
    for stream in ("s0", "s1", "s2", "s3"):
        seqs = [e.seq for e in read_stream(database, "a", stream, -1, 10_000)]
        assert seqs == list(range(450))


def test_postgresql_schema_keeps_tests_apart(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    with database.read() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        assert str(schema).startswith("tw_test_")
        assert conn.execute(sa.select(sa.func.count()).select_from(telemetry)).scalar() == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a valid SQLAlchemy URL"),
        ("mysql://u@h/db", "only sqlite:// and postgresql://"),
    ],
)
def test_bad_database_url_is_a_usage_error(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        open_database(url)


def test_bad_schema_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="schema"):
        open_database("postgresql+psycopg://postgres@127.0.0.1:5432/test", schema="x; drop")


def test_a_database_from_before_the_escalation_rules_gains_their_columns(tmp_path: Path) -> None:
    """A cloud upgraded in place keeps its assignments: the columns added since are added
    (with their defaults), and the edge's deployment query works on the old rows."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    with old.begin() as conn:  # the assignments table as tierwise made it before rules
        conn.exec_driver_sql(
            "CREATE TABLE assignments (site VARCHAR(128) NOT NULL, feature VARCHAR(128) NOT NULL,"
            " package VARCHAR(128) NOT NULL, version INTEGER NOT NULL, placement VARCHAR(16)"
            " NOT NULL, threshold FLOAT, deadline_ms FLOAT NOT NULL, escalate_budget_ms FLOAT,"
            " updated_at FLOAT NOT NULL, PRIMARY KEY (site, feature))"
        )
        conn.exec_driver_sql(
            "INSERT INTO assignments VALUES ('a', 'f', 'p', 1, 'cascade', 0.8, 150, NULL, 1)"
        )
    old.dispose()
    db = open_database(url)
    try:
        with db.read() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT rule, tie_share, planned_escalated, threshold, variant FROM assignments"
                )
            ).one()
        assert tuple(row) == ("max_probability", 0.0, None, 0.8, None)  # variant: the smallest
    finally:
        db.dispose()
