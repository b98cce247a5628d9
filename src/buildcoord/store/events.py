"""The append-only event log: every state change writes one row here in its own transaction.

The events table is one of the job tables: its statements are in job_queries and run on the
driver's cursor, in a driver transaction or inside an SQLAlchemy one (``append_event``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from sqlalchemy import Connection, Engine

from buildcoord.models import Event
from buildcoord.store import job_queries as queries
from buildcoord.store.engine import (
    Driver,
    after_commit,
    driver_read,
    event_commits,
    write_transaction,
)
from buildcoord.store.timestamps import from_epoch

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
        Driver.within(conn),
        at=at,
        actor=actor,
        kind=kind,
        subject=subject,
        before=before,
        after=after,
    )
    if kind in Revocations.KINDS:
        token_revocations.bump()
        after_commit(conn, token_revocations.bump)
    after_commit(conn, event_commits.fire)


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
    db.run(queries.APPEND_EVENT, event_values(at, actor, kind, subject, before, after))


def event_values(
    at: float,
    actor: str,
    kind: str,
    subject: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """The parameters of job_queries.APPEND_EVENT, in its column order (JSON, sorted keys)."""
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

    def last_event_id(self) -> int:
        """The newest event's id; 0 when the log is empty."""
        with driver_read(self.engine) as db:
            return int(db.run(queries.LAST_EVENT_ID).fetchone()[0])

    def record_action(
        self,
        *,
        at: float,
        actor: str,
        kind: str,
        subject: str,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Append an event for an action that may have changed nothing (an operator's run of
        maintenance, a clean-up, an import): the audit trail says who asked, and when."""
        with write_transaction(self.engine) as conn:
            append_event(conn, at=at, actor=actor, kind=kind, subject=subject, after=after)

    def list_events(
        self,
        *,
        subject: str | None = None,
        kind: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[Event]:
        """Return events in append order after a cursor: all, one subject's, or (``kind``,
        which wins over ``subject``) one kind's."""
        with driver_read(self.engine) as db:
            if kind is not None:
                rows = db.run(queries.LIST_KIND_EVENTS, (after_id, kind, limit)).fetchall()
            elif subject is None:
                rows = db.run(queries.LIST_EVENTS, (after_id, limit)).fetchall()
            else:
                rows = db.run(queries.LIST_SUBJECT_EVENTS, (after_id, subject, limit)).fetchall()
        return [
            Event(
                id=event_id,
                at=from_epoch(at),
                actor=actor,
                kind=kind,
                subject=about,
                before=None if before is None else json.loads(before),
                after=None if after is None else json.loads(after),
            )
            for event_id, at, actor, kind, about, before, after in rows
        ]
