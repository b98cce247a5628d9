"""Accepted webhook deliveries, remembered for a while so that a replay is refused."""

from __future__ import annotations

from sqlalchemy import Engine, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from buildcoord.store.engine import write_transaction
from buildcoord.store.schema import webhook_deliveries


class WebhookDeliveryStore:
    """SQL for the webhook_deliveries table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_delivery(self, delivery_id: str, *, now: float) -> bool:
        """Record a delivery id; False when it was recorded before (by any coordinator).

        The primary key decides, so of two coordinators receiving one delivery at once,
        exactly one records it.
        """
        with write_transaction(self.engine) as conn:
            make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            # ON CONFLICT DO NOTHING: a duplicate leaves a PostgreSQL transaction usable.
            # SQLAlchemy keeps an INSERT's rowcount only when asked; psycopg otherwise gives -1.
            inserted = conn.execute(
                make(webhook_deliveries)
                .values(delivery_id=delivery_id, received_at=now)
                .on_conflict_do_nothing(index_elements=[webhook_deliveries.c.delivery_id]),
                execution_options={"preserve_rowcount": True},
            )
            return inserted.rowcount == 1

    def forget_deliveries(self, *, before: float) -> int:
        """Delete the deliveries received before a time; how many were deleted."""
        with write_transaction(self.engine) as conn:
            deleted = conn.execute(
                delete(webhook_deliveries).where(webhook_deliveries.c.received_at < before)
            )
            return deleted.rowcount
