"""jobs by finish time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 23:30:00.000000

Maintenance looks for recently finished jobs whose attempt has no build history row (its
after-finish recording was lost with a connection): an index walk over the last hour.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_finished_at", ["finished_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_finished_at")
