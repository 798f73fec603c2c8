"""At most one running (canary or promoting) rollout per package, enforced by the database.

Replicas that start rollouts of one package at the same moment can both pass
`start_rollout`'s check; this partial unique index makes the second insert fail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RUNNING = sa.text("state IN ('canary', 'promoting')")


def upgrade() -> None:
    op.create_index(
        "one_running_rollout_per_package",
        "rollouts",
        ["package"],
        unique=True,
        postgresql_where=RUNNING,
        sqlite_where=RUNNING,
    )


def downgrade() -> None:
    op.drop_index("one_running_rollout_per_package", table_name="rollouts")
