"""legacy records

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legacy_records",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("legacy_id", sa.String(length=255), nullable=False),
        sa.Column("local_id", sa.String(length=255), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "legacy_id", name=op.f("pk_legacy_records")),
    )
    op.create_index("ix_legacy_records_local", "legacy_records", ["kind", "local_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_legacy_records_local", table_name="legacy_records")
    op.drop_table("legacy_records")
