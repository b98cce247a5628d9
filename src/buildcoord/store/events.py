"""The append-only event log: every state change writes one row here in its own transaction."""

from __future__ import annotations

import json
import threading
from typing import Any

from sqlalchemy import Connection, Engine, select

from buildcoord.models import Event
from buildcoord.store.engine import Driver, after_commit, read_transaction, sql
from buildcoord.store.schema import events
from buildcoord.store.timestamps import from_epoch

# One event row, built once: building an insert() per event cost more than running it.
# "before" and "after" are quoted: both are SQL keywords. Parameters: event_values(...).
EVENT_TABLE = 'events (at, actor, kind, subject, "before", "after")'
APPEND_EVENT = sql(f"INSERT INTO {EVENT_TABLE} VALUES (?, ?, ?, ?, ?, ?)")

# json.dumps(value, sort_keys=True), without building an encoder per call.
_to_json = json.JSONEncoder(sort_keys=True).encode


class Revocations:
    """Counts changes that revoke API tokens, for caches of authenticated tokens.

    A cache keeps what it read only if the count did not move meanwhile, and trusts an entry
    only while the count is the one it was stored under. The count moves when a revoking
    event is appended and again once its transaction has committed, so a read that saw the
    token still live (before the commit) is never trusted afterwards.
    """

    # The events written in the same transaction as a token revocation.
    KINDS = frozenset({"token.revoked", "token.rotated", "server.removed"})

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @property
    def generation(self) -> int:
        """The current count."""
        return self._count

    def bump(self) -> None:
        """Record a revocation (about to commit, or committed)."""
        with self._lock:
            self._count += 1


token_revocations = Revocations()
"""Revocations in this process (other processes' revocations are not seen here)."""


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
    """Append one event inside the caller's write_transaction."""
    record_event(
        Driver.on(conn), at=at, actor=actor, kind=kind, subject=subject, before=before, after=after
    )
    if kind in Revocations.KINDS:
        token_revocations.bump()
        after_commit(conn, token_revocations.bump)


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
    db.run(APPEND_EVENT, event_values(at, actor, kind, subject, before, after))


def event_values(
    at: float,
    actor: str,
    kind: str,
    subject: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """The parameters of APPEND_EVENT, in EVENT_TABLE's column order (JSON, sorted keys)."""
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
