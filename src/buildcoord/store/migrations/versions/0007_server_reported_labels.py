"""server reported labels

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SERVER_LABEL_PREFIX = "server="  # a copy: a migration must not change with the code


def _joined(labels: set[str]) -> str:
    return ",".join(sorted(labels))


def upgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reported_labels", sa.Text(), server_default=sa.text("''"), nullable=False)
        )
    # Before this revision a heartbeat's labels replaced the operator's, so whoever set them,
    # they stay as the operator's; but a stored server= label is dropped: every server now
    # has server=<its name> implicitly, and one naming another server would take its jobs.
    conn = op.get_bind()
    for name, labels in conn.execute(sa.text("SELECT name, labels FROM servers")).all():
        kept = {label for label in labels.split(",") if label}
        kept = {label for label in kept if not label.startswith(_SERVER_LABEL_PREFIX)}
        if _joined(kept) != labels:
            conn.execute(
                sa.text("UPDATE servers SET labels = :labels WHERE name = :name"),
                {"labels": _joined(kept), "name": name},
            )


def downgrade() -> None:
    # Before this revision a claim matched the stored labels alone: keep every label each
    # server matched (the operator's, the reported, its own server=<name>) in them.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT name, labels, reported_labels FROM servers")).all()
    for name, labels, reported in rows:
        merged = {label for label in f"{labels},{reported}".split(",") if label}
        merged.add(f"{_SERVER_LABEL_PREFIX}{name}")
        conn.execute(
            sa.text("UPDATE servers SET labels = :labels WHERE name = :name"),
            {"labels": _joined(merged), "name": name},
        )
    # A plain DROP COLUMN (SQLite >= 3.35), as in 0006: no table rebuild.
    op.drop_column("servers", "reported_labels")
