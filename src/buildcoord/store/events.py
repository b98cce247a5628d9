"""The append-only event log: every state change writes one row here in its own transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, select

from buildcoord.models import Event
from buildcoord.store.engine import Driver, read_transaction, sql
from buildcoord.store.schema import events
from buildcoord.store.timestamps import from_epoch

# One event row, built once: building an insert() per event cost more than running it.
# "before" and "after" are quoted: both are SQL keywords.
EVENT_INSERT = (
    'INSERT INTO events (at, actor, kind, subject, "before", "after") VALUES (?, ?, ?, ?, ?, ?)'
)
_APPEND = sql(EVENT_INSERT)

# json.dumps(value, sort_keys=True), without building an encoder per call.
_to_json = json.JSONEncoder(sort_keys=True).encode


def append_event(
    conn: Connection,
    *,
    at: float,
    actor: str,
    kind: str,
    subject: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append one event inside the caller's transaction."""
    record_event(
        Driver.on(conn), at=at, actor=actor, kind=kind, subject=subject, before=before, after=after
    )


def record_event(
    db: Driver,
    *,
    at: float,
    actor: str,
    kind: str,
    subject: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append one event inside the transaction a Driver runs."""
    db.run(_APPEND, event_values(at, actor, kind, subject, before, after))


def event_values(
    at: float,
    actor: str,
    kind: str,
    subject: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """The parameters of EVENT_INSERT, in its column order (JSON with sorted keys)."""
    return (
        at,
        actor,
        kind,
        subject,
        None if before is None else _to_json(before),
        None if after is None else _to_json(after),
    )


class EventStore:
    """Reads of the event log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list_events(
        self, *, subject: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Return events in append order, optionally for one subject, after a cursor."""
        query = select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        if subject is not None:
            query = query.where(events.c.subject == subject)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
        return [
            Event(
                id=row.id,
                at=from_epoch(row.at),
                actor=row.actor,
                kind=row.kind,
                subject=row.subject,
                before=None if row.before is None else json.loads(row.before),
                after=None if row.after is None else json.loads(row.after),
            )
            for row in rows
        ]
