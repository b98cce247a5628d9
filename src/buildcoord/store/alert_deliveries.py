"""The notification outbox: queued in the transaction that changed the alert, claimed by
compare-and-set, sent once, retried with backoff, recorded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Engine

from buildcoord.models import AlertDelivery
from buildcoord.store.engine import Driver, driver_read, driver_transaction, sql
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

_COLUMNS = (
    "id, alert_id, notifier, event, created_at, due_at, attempts, sent_at, gave_up_at, last_error"
)

# Queue one delivery. Parameters: alert_id, notifier, event, created_at, due_at.
QUEUE_DELIVERY = sql(
    "INSERT INTO alert_deliveries (alert_id, notifier, event, created_at, due_at, attempts)"
    " VALUES (?, ?, ?, ?, ?, 0)"
)

# A notifier's deliveries due now and not claimed by anyone, oldest first (on the partial
# index). Parameters: notifier, now, now, limit.
_DUE = sql(
    "SELECT id FROM alert_deliveries WHERE notifier = ? AND sent_at IS NULL"
    " AND gave_up_at IS NULL AND due_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)"
    " ORDER BY due_at, id LIMIT ?"
)

# Claim one (compare-and-set: no row if another coordinator claimed it first). Parameters:
# claimed_until, id, now.
_CLAIM = sql(
    "UPDATE alert_deliveries SET claimed_until = ? WHERE id = ? AND sent_at IS NULL"
    " AND gave_up_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?)"
    " RETURNING id, alert_id, event, attempts"
)

# Parameters: sent_at, receipt, id.
_SENT = sql(
    "UPDATE alert_deliveries SET sent_at = ?, receipt = ?, attempts = attempts + 1,"
    " claimed_until = NULL, last_error = NULL WHERE id = ?"
)

# The receipt of the first sent delivery of an alert to a notifier that has one (the issue
# its opening created). Parameters: alert_id, notifier.
_RECEIPT = sql(
    "SELECT receipt FROM alert_deliveries WHERE alert_id = ? AND notifier = ?"
    " AND receipt IS NOT NULL ORDER BY id LIMIT 1"
)

# A failed attempt: retry at due_at, or give up (gave_up_at not NULL). Parameters: due_at,
# gave_up_at, last_error, id.
_FAILED = sql(
    "UPDATE alert_deliveries SET due_at = ?, gave_up_at = ?, last_error = ?,"
    " attempts = attempts + 1, claimed_until = NULL WHERE id = ?"
)

# An alert's deliveries, in the order they were queued. Parameters: alert_id.
_OF_ALERT = sql(f"SELECT {_COLUMNS} FROM alert_deliveries WHERE alert_id = ? ORDER BY id")


# Open, unacknowledged alerts the notifier was told of, and told nothing since ``since``:
# id, rule, subject, severity. PostgreSQL locks them, so that a second coordinator queueing
# the same reminders waits, then finds them queued (REMIND's own, later snapshot).
# Parameters: notifier, notifier, since.
_REMINDABLE = (
    "SELECT a.id, a.rule, a.subject, a.severity FROM alerts a"
    " WHERE a.resolved_at IS NULL AND a.acknowledged_at IS NULL"
    " AND EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.notifier = ?)"
    " AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id"
    " AND d.notifier = ? AND d.created_at > ?) ORDER BY a.id"
)
_REMINDABLE_SQL = sql(_REMINDABLE, postgresql=f"{_REMINDABLE} FOR UPDATE OF a")

# Queue a reminder unless one was queued since ``since``. Parameters: alert_id, notifier,
# created_at, due_at, alert_id, notifier, since.
_REMIND = sql(
    "INSERT INTO alert_deliveries (alert_id, notifier, event, created_at, due_at, attempts)"
    " SELECT ?, ?, 'reminder', ?, ?, 0 WHERE NOT EXISTS (SELECT 1 FROM alert_deliveries"
    " WHERE alert_id = ? AND notifier = ? AND created_at > ?)"
)


class ClaimedDelivery(NamedTuple):
    """A delivery this process holds until its claim runs out."""

    id: int
    alert_id: int
    event: str
    attempts: int
    """Attempts before this one."""


def queue_delivery(db: Driver, alert_id: int, notifier: str, event: str, now: float) -> None:
    """Queue a delivery inside the caller's driver transaction (due at once)."""
    db.run(QUEUE_DELIVERY, (alert_id, notifier, event, now, now))


class AlertDeliveryStore:
    """SQL for the notification outbox."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim_deliveries(
        self, notifier: str, *, now: float, until: float, limit: int
    ) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` of a notifier's due deliveries until ``until``."""
        with driver_transaction(self.engine, appends_events=False) as db:
            due = [delivery_id for (delivery_id,) in db.run(_DUE, (notifier, now, now, limit))]
            claimed = []
            for delivery_id in due:
                row = db.run(_CLAIM, (until, delivery_id, now)).fetchone()
                if row is not None:
                    claimed.append(ClaimedDelivery(*row))
            return claimed

    def queue_reminders(
        self,
        notifier: str,
        *,
        since: float,
        now: float,
        wanted: Callable[[str, str, str], bool],
    ) -> int:
        """Queue a reminder to ``notifier`` of each open, unacknowledged alert it was told of
        and told nothing since ``since``, where ``wanted(rule, subject, severity)``; return
        how many were queued. Each once, however many coordinators ask at once."""
        queued = 0
        with driver_transaction(self.engine, appends_events=False) as db:
            rows = db.run(_REMINDABLE_SQL, (notifier, notifier, since)).fetchall()
            for alert_id, rule, subject, severity in rows:
                if not wanted(rule, subject, severity):
                    continue
                params = (alert_id, notifier, now, now, alert_id, notifier, since)
                queued += db.run(_REMIND, params).rowcount
        return queued

    def record_sent(self, delivery_id: int, *, now: float, receipt: str | None = None) -> None:
        """Record a delivery sent, with what the receiver gave back for it."""
        with driver_transaction(self.engine, appends_events=False) as db:
            db.run(_SENT, (now, receipt, delivery_id))

    def delivery_receipt(self, alert_id: int, notifier: str) -> str | None:
        """What the receiver gave back for the alert's first delivery that got something."""
        with driver_read(self.engine) as db:
            found = db.run(_RECEIPT, (alert_id, notifier)).fetchone()
        return None if found is None else str(found[0])

    def record_failed(
        self, delivery_id: int, error: str, *, now: float, retry_at: float | None
    ) -> None:
        """Record a failed attempt: try again at ``retry_at``, or give up (None)."""
        with driver_transaction(self.engine, appends_events=False) as db:
            gave_up = now if retry_at is None else None
            db.run(_FAILED, (retry_at or now, gave_up, error[:1000], delivery_id))

    def list_deliveries(self, alert_id: int) -> list[AlertDelivery]:
        """An alert's deliveries, in the order they were queued."""
        with driver_read(self.engine) as db:
            return [_delivery(row) for row in db.run(_OF_ALERT, (alert_id,)).fetchall()]


class _DeliveryRow(NamedTuple):
    """An alert_deliveries row in _COLUMNS order."""

    id: int
    alert_id: int
    notifier: str
    event: str
    created_at: float
    due_at: float
    attempts: int
    sent_at: float | None
    gave_up_at: float | None
    last_error: str | None


def _delivery(row: Sequence[Any]) -> AlertDelivery:
    values = _DeliveryRow(*row)
    return AlertDelivery(
        id=values.id,
        alert_id=values.alert_id,
        notifier=values.notifier,
        event=values.event,
        created_at=from_epoch(values.created_at),
        due_at=from_epoch(values.due_at),
        attempts=values.attempts,
        sent_at=from_epoch_or_none(values.sent_at),
        gave_up_at=from_epoch_or_none(values.gave_up_at),
        last_error=values.last_error,
    )
