"""Alembic's entry point: run the pending revisions on the connection `migrate` passes in.

Only "online" migrations on a caller's connection: the caller holds the migration lock and
the transaction, so the revisions and the version stamp commit together or not at all.
"""

from __future__ import annotations

from alembic import context

from tierwise.cloud.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("tierwise migrations run through tierwise.cloud.migrate, not alembic's CLI")
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
