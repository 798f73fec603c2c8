"""The cloud's tables and how to open them: SQLite (WAL) by default, PostgreSQL by URL.

SQLAlchemy Core, not the ORM: the service does bulk inserts and small queries, and Core
keeps the SQL visible. Two dialect differences are handled here and nowhere else:
"insert, skipping rows that already exist" (`Database.insert_ignoring_duplicates`) and SQLite's
write locking (`Database.write` takes the write lock up front, see `_sqlite_begin`).
The tables here are what the code queries; how a database gets them, revision by revision,
is `migrations/` (run by `migrate.upgrade_to_head` when the database is opened).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from tierwise.cloud.migrate import Migration, upgrade_to_head
from tierwise.errors import UsageError
from tierwise.wire import RolloutState

metadata = sa.MetaData()

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(8), nullable=False),  # "site" or "admin"
    sa.Column("site", sa.String(128), nullable=True, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

packages = sa.Table(
    "packages",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("uploaded_at", sa.Float, nullable=False),
)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("site", sa.String(128), primary_key=True),
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("package", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("variant", sa.String(128), nullable=True),  # None: the package's smallest
    sa.Column("placement", sa.String(16), nullable=False),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("rule", sa.String(32), nullable=False, server_default="max_probability"),
    sa.Column("tie_share", sa.Float, nullable=False, server_default="0"),
    sa.Column("planned_escalated", sa.Float, nullable=True),
    sa.Column("deadline_ms", sa.Float, nullable=False),
    sa.Column("escalate_budget_ms", sa.Float, nullable=True),
    sa.Column("raw_data_may_reach", sa.String(8), nullable=False, server_default="site"),
    sa.Column("updated_at", sa.Float, nullable=False),
)

cloud_models = sa.Table(
    "cloud_models",
    metadata,
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("package", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("package", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("canary_sites", sa.JSON, nullable=False),
    sa.Column("other_sites", sa.JSON, nullable=False),
    sa.Column("previous", sa.JSON, nullable=False),  # {site: {feature: version}} before it
    sa.Column("thresholds", sa.JSON, nullable=False),
    sa.Column("min_canary_requests", sa.Integer, nullable=False),
    sa.Column("min_canary_feedback", sa.Integer, nullable=False),
    sa.Column("bake_seconds", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("promoted_at", sa.Float, nullable=True),
)

# At most one running rollout per package, enforced by the database: replicas that start
# rollouts of one package at the same moment cannot both pass start_rollout's check.
# (Migration 0002; every change to these tables is a new revision in migrations/versions.)
_RUNNING = rollouts.c.state.in_([RolloutState.CANARY.value, RolloutState.PROMOTING.value])
sa.Index(
    "one_running_rollout_per_package",
    rollouts.c.package,
    unique=True,
    postgresql_where=_RUNNING,
    sqlite_where=_RUNNING,
)

status_reports = sa.Table(
    "status_reports",
    metadata,
    sa.Column("site", sa.String(128), primary_key=True),
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("since", sa.Float, primary_key=True),
    sa.Column("package", sa.String(128), nullable=False),
    sa.Column("healthy", sa.Boolean, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("escalations", sa.BigInteger, nullable=False),
    sa.Column("p50_ms", sa.Float, nullable=True),
    sa.Column("p99_ms", sa.Float, nullable=True),
    sa.Column("feedback_correct", sa.BigInteger, nullable=False),
    sa.Column("feedback_total", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)

telemetry = sa.Table(
    "telemetry",
    metadata,
    sa.Column("site", sa.String(128), primary_key=True),
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)

drift_status = sa.Table(
    "drift_status",
    metadata,
    sa.Column("site", sa.String(128), primary_key=True),
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("package", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("variant", sa.String(128), nullable=False),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("column", sa.String(32), nullable=False),
    sa.Column("psi", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("columns_over", sa.Integer, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("checked_at", sa.Float, nullable=False),
)

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # one plan per cloud: id 1
    sa.Column("spec", sa.String(128), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),  # cloud/dashboard/cost.py's UploadedPlan
    sa.Column("uploaded_at", sa.Float, nullable=False),
)

# PostgreSQL connections a replica keeps open, and how many more it may open for a burst.
# Sized above the requests one replica works on at once (a dozen telemetry uploads in flight
# plus light calls): with SQLAlchemy's default 5 each upload beyond the fifth opened and
# closed a connection, so PostgreSQL forked a backend per request (~120 sessions in 10 s,
# twice its CPU per event; benchmarks/cloud_scale.py). Four replicas at their most (80)
# stay under PostgreSQL's default max_connections (100).
POOL_SIZE = 12
POOL_OVERFLOW = 8

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}

M = TypeVar("M", bound=BaseModel)


def row_as(model: type[M], row: sa.Row[Any]) -> M:
    """A wire model from the columns of a row that it has fields for (the others are ignored)."""
    columns = row._mapping
    return model.model_validate(
        {name: columns[name] for name in model.model_fields if name in columns}
    )


ANNOUNCE_CHANNEL = "tierwise_changes"  # PostgreSQL NOTIFY channel; payload "<schema>:<what>"
_ANNOUNCED = "tierwise_announced"  # key in a connection's `info`: announced, not yet committed


def announce(conn: Connection, what: set[str]) -> None:
    """Tell every replica, once this transaction commits, that `what` changed.

    PostgreSQL: `pg_notify` inside the transaction, so the notice is delivered at commit and
    never for a rolled-back change, to every replica that LISTENs (`tierwise.cloud.changes`);
    the payload names the schema, since replicas of other schemas share the channel. Any
    database: the `Database.on_commit` callbacks of this process too, after a `Database.write`
    transaction commits.
    """
    if not what:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_notify(:channel, current_schema() || ':' || :what)"),
            [{"channel": ANNOUNCE_CHANNEL, "what": w} for w in sorted(what)],
        )
    conn.info.setdefault(_ANNOUNCED, set()).update(what)


class Database:
    """An engine plus the two ways the service touches it: a read and a write transaction."""

    def __init__(self, engine: Engine, migration: Migration | None = None) -> None:
        self.engine = engine
        self.migration = migration  # what opening it did to the schema
        self.dialect = engine.dialect.name
        if self.dialect not in _INSERTS:
            raise UsageError(f"database {engine.url!r}: only sqlite and postgresql are supported")
        self._committed: list[Callable[[set[str]], None]] = []

    def on_commit(self, callback: Callable[[set[str]], None]) -> None:
        """Call `callback(what)` after each `write` transaction that announced `what` commits."""
        self._committed.append(callback)

    def insert_ignoring_duplicates(self, table: sa.Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING, built by the dialect's own insert()."""
        return _INSERTS[self.dialect](table).on_conflict_do_nothing()

    def bulk_insert_ignoring_duplicates(
        self, conn: Connection, table: sa.Table, rows: Sequence[Sequence[Any]]
    ) -> int:
        """Insert many rows (values in column order), skip those whose key exists; count the new.

        Thousands of rows per call, so SQLAlchemy's per-row parameter processing (ten times
        the insert itself) is bypassed; JSON columns take already-serialized text. The
        statement's row count skips the rows it did not insert, so the result is exactly the
        number of new rows.

        PostgreSQL: one statement for the whole batch, each column sent as one array and
        turned back into rows by `unnest`. psycopg's executemany (pipelined, one INSERT per
        row) cost ~25 µs of Python per row, more than everything else a telemetry upload
        does (benchmarks/cloud_scale.py); the arrays are dumped in C. ON CONFLICT DO NOTHING
        also skips a row that conflicts with a concurrent replica's insert of the same key.
        SQLite: executemany, whose per-row cost is in C already.
        """
        if not rows:
            return 0
        names = ", ".join(c.name for c in table.columns)
        if self.dialect == "postgresql":
            arrays = ", ".join(
                f"%b::{c.type.compile(dialect=conn.dialect)}[]" for c in table.columns
            )
            sql = (
                f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}) "
                "ON CONFLICT DO NOTHING"
            )
            columns = [list(column) for column in zip(*rows, strict=True)]
            return int(conn.exec_driver_sql(sql, tuple(columns)).rowcount)
        marks = ", ".join("?" for _ in table.columns)
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        return int(conn.exec_driver_sql(sql, [tuple(r) for r in rows]).rowcount)

    def upsert(self, table: sa.Table, keys: list[str], values: list[str]) -> Any:
        """INSERT ... ON CONFLICT (keys) DO UPDATE SET each of `values` to the new row's."""
        stmt = _INSERTS[self.dialect](table)
        return stmt.on_conflict_do_update(
            index_elements=keys, set_={v: stmt.excluded[v] for v in values}
        )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: on SQLite it holds the write lock from its start.

        What it `announce`d goes to the `on_commit` callbacks once the commit is done (the
        engine's own commit event comes before it: a waiter woken then could still read the
        old rows)."""
        with self.engine.connect() as conn:
            conn.execution_options(tierwise_write=True)
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                conn.info.pop(_ANNOUNCED, None)  # rolled back: nothing happened
                raise
            announced = conn.info.pop(_ANNOUNCED, None)
        if announced:
            for callback in self._committed:
                callback(announced)

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, schema: str | None = None) -> Database:
    """Connect, migrate the schema to this tierwise's newest revision, return the database.

    `schema` (PostgreSQL only) puts every table in that schema, created if missing: the
    tests give each run its own and drop it afterwards.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise UsageError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    elif parsed.get_backend_name() == "postgresql":
        engine = _postgresql_engine(parsed, schema)
    else:
        raise UsageError(f"database URL {url!r}: only sqlite:// and postgresql:// are supported")
    try:
        migration = upgrade_to_head(engine, schema)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UsageError(f"database {parsed.render_as_string()}: {reason}") from None
    except UsageError:
        engine.dispose()
        raise
    return Database(engine, migration)


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over BEGIN from the driver so `_sqlite_begin` can choose IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode except on power loss
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        # A deferred transaction that later writes fails at once with SQLITE_BUSY when another
        # writer got there first (busy_timeout does not apply to that upgrade); IMMEDIATE waits.
        immediate = conn.get_execution_options().get("tierwise_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgresql_engine(url: sa.URL, schema: str | None) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise UsageError(f"database schema {schema!r}: use lower-case letters, digits and _")
        connect_args["options"] = f"-c search_path={schema}"
    return sa.create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
    )
