"""The newest drift verdict per site and feature (cloud/drift.py).

A database made by `create_all` while the table was new (before this revision existed) has it
already: then there is nothing to do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("drift_status"):
        return
    op.create_table(
        "drift_status",
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


def downgrade() -> None:
    op.drop_table("drift_status")
