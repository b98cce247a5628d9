"""alerts, alert silences, alert deliveries, server quarantine, fleet samples, build totals

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_OPEN = "resolved_at IS NULL"
_DUE = "sent_at IS NULL AND gave_up_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quarantined_at", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("quarantine_reason", sa.Text(), nullable=True))
    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=1000), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.Double(), nullable=False),
        sa.Column("last_seen_at", sa.Double(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("clear_since", sa.Double(), nullable=True),
        sa.Column("resolved_at", sa.Double(), nullable=True),
        sa.Column("acknowledged_at", sa.Double(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ux_alerts_open",
            ["rule", "subject"],
            unique=True,
            sqlite_where=sa.text(_OPEN),
            postgresql_where=sa.text(_OPEN),
        )
        batch_op.create_index("ix_alerts_opened_at", ["opened_at"], unique=False)
    op.create_table(
        "alert_silences",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("until", sa.Double(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.create_index("ix_alert_silences_until", ["until"], unique=False)
    op.create_table(
        "alert_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("notifier", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("due_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.Double(), nullable=True),
        sa.Column("sent_at", sa.Double(), nullable=True),
        sa.Column("gave_up_at", sa.Double(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("receipt", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_deliveries_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_deliveries_due",
            ["notifier", "due_at"],
            unique=False,
            sqlite_where=sa.text(_DUE),
            postgresql_where=sa.text(_DUE),
        )
        batch_op.create_index("ix_alert_deliveries_alert", ["alert_id"], unique=False)
    op.create_table(
        "fleet_samples",
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("servers_online", sa.Double(), nullable=False),
        sa.Column("servers_total", sa.Double(), nullable=False),
        sa.Column("queued", sa.Double(), nullable=False),
        sa.Column("running", sa.Double(), nullable=False),
        sa.Column("blocked", sa.Double(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("period", "at", name=op.f("pk_fleet_samples")),
    )
    _build_totals()


_BOUNDS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


def _build_totals() -> None:
    """The build_totals table, filled with the history recorded so far."""
    op.create_table(
        "build_totals",
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("duration_sum", sa.Double(), nullable=False),
        *(sa.Column(f"le_{bound}", sa.BigInteger(), nullable=False) for bound in _BOUNDS),
        sa.PrimaryKeyConstraint("branch", "result", name=op.f("pk_build_totals")),
    )
    buckets = ", ".join(f"le_{bound}" for bound in _BOUNDS)
    sums = ", ".join(f"SUM(CASE WHEN duration <= {bound} THEN 1 ELSE 0 END)" for bound in _BOUNDS)
    op.execute(
        f"INSERT INTO build_totals (branch, result, count, duration_sum, {buckets})"
        f" SELECT branch, result, COUNT(*), COALESCE(SUM(duration), 0), {sums}"
        " FROM build_history GROUP BY branch, result"
    )


def downgrade() -> None:
    op.drop_table("build_totals")
    op.drop_table("fleet_samples")
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_deliveries_alert")
        batch_op.drop_index(
            "ix_alert_deliveries_due", sqlite_where=sa.text(_DUE), postgresql_where=sa.text(_DUE)
        )
    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_silences_until")
    op.drop_table("alert_silences")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_opened_at")
        batch_op.drop_index(
            "ux_alerts_open", sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN)
        )
    op.drop_table("alerts")
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("quarantine_reason")
        batch_op.drop_column("quarantined_at")
