"""The schema as `metadata.create_all` made it before migrations were versioned.

Frozen here, not imported from `tierwise.cloud.db`: later revisions change that module's
tables, and this revision must keep meaning what it meant. It also adopts a database made
by an earlier tierwise (tables present, no `alembic_version`): missing tables are created,
and columns added since that tierwise (all nullable or defaulted) are added in place, so the
rows already there stay valid. Nothing is dropped, renamed or retyped.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tierwise.errors import UsageError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

schema = sa.MetaData()

sa.Table(
    "tokens",
    schema,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(8), nullable=False),
    sa.Column("site", sa.String(128), nullable=True, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Table(
    "packages",
    schema,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("uploaded_at", sa.Float, nullable=False),
)
sa.Table(
    "assignments",
    schema,
    sa.Column("site", sa.String(128), primary_key=True),
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("package", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("variant", sa.String(128), nullable=True),
    sa.Column("placement", sa.String(16), nullable=False),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("rule", sa.String(32), nullable=False, server_default="max_probability"),
    sa.Column("tie_share", sa.Float, nullable=False, server_default="0"),
    sa.Column("planned_escalated", sa.Float, nullable=True),
    sa.Column("deadline_ms", sa.Float, nullable=False),
    sa.Column("escalate_budget_ms", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)
sa.Table(
    "cloud_models",
    schema,
    sa.Column("feature", sa.String(128), primary_key=True),
    sa.Column("package", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
sa.Table(
    "rollouts",
    schema,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("package", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("canary_sites", sa.JSON, nullable=False),
    sa.Column("other_sites", sa.JSON, nullable=False),
    sa.Column("previous", sa.JSON, nullable=False),
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
sa.Table(
    "status_reports",
    schema,
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
sa.Table(
    "telemetry",
    schema,
    sa.Column("site", sa.String(128), primary_key=True),
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in schema.sorted_tables:
        if table.name not in existing:
            table.create(bind)  # with its indexes
            continue
        have = {column["name"] for column in sa.inspect(bind).get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not (column.nullable or column.server_default is not None):
                raise UsageError(
                    f"database table {table.name} lacks column {column.name}, which cannot "
                    "be added to existing rows: start from a new database"
                )
            default = column.server_default
            op.add_column(
                table.name,
                sa.Column(
                    column.name,
                    column.type,
                    nullable=column.nullable,
                    server_default=None if default is None else default.arg,  # type: ignore[attr-defined]
                ),
            )
        for index in table.indexes:
            index.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(schema.sorted_tables):
        table.drop(bind)
