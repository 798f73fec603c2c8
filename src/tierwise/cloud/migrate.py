"""Versioned schema migrations (Alembic), run by every replica at start, applied by one.

`upgrade_to_head` runs in one transaction that first takes the migration lock: on
PostgreSQL a transaction-scoped advisory lock named after the schema, on SQLite the
database's write lock (`BEGIN IMMEDIATE`). Replicas starting together queue on it; the first
applies the pending revisions and commits (PostgreSQL's DDL is transactional, so a replica
killed mid-migration leaves the schema as it was), the others then find nothing pending.
A database made before migrations were versioned has tables but no `alembic_version`:
revision 0001 adopts it in place (see that file), so no manual stamp is needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Engine

from tierwise.errors import UsageError

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).with_name("migrations")
LOCK_NAME = "tierwise-cloud-migrations:"  # + the schema: each schema migrates on its own


@dataclass(frozen=True)
class Migration:
    """What one start did to the schema: the revision it found, the one it left, and those
    it applied itself (empty when the schema was current or another replica migrated it)."""

    found: str | None
    head: str
    applied: tuple[str, ...]


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def upgrade_to_head(engine: Engine, schema: str | None = None) -> Migration:
    """Bring the database (the PostgreSQL `schema`, created if missing) to the newest revision."""
    config = _config()
    scripts = ScriptDirectory.from_config(config)
    head = scripts.get_current_head()
    assert head is not None
    with engine.connect() as conn:
        conn.execution_options(tierwise_write=True)  # SQLite: BEGIN IMMEDIATE, the lock
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                    {"name": LOCK_NAME + (schema or "")},
                )
                if schema is not None:  # not concurrency-safe by itself: under the lock
                    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            found = MigrationContext.configure(conn).get_current_revision()
            if found is not None and found != head and _unknown(scripts, found):
                raise UsageError(
                    f"database schema is at migration {found}, which this tierwise does not "
                    f"know (it knows up to {head}): a newer tierwise migrated it; upgrade this one"
                )
            pending = tuple(reversed([s.revision for s in scripts.iterate_revisions(head, found)]))
            if pending:
                config.attributes["connection"] = conn
                command.upgrade(config, head)
                log.info("database migrated from %s to %s", found or "nothing", head)
    return Migration(found=found, head=head, applied=pending)


def _unknown(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is None
    except CommandError:
        return True


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    return config
