"""The plan the fleet runs, as the operator uploaded it (cloud/dashboard/cost.py)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("plans"):
        return
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("spec", sa.String(128), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("uploaded_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plans")
