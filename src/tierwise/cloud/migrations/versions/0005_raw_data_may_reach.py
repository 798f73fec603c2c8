"""How far a feature's raw inputs may travel, on its assignments: what the site's feedback
may carry (edge/feedback.py). Existing assignments get `site`: summaries only."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("assignments")}
    if "raw_data_may_reach" in columns:
        return
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(
            sa.Column("raw_data_may_reach", sa.String(8), nullable=False, server_default="site")
        )


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("raw_data_may_reach")
