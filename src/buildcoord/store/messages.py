"""Messages between servers: read state per recipient, acknowledgements, archiving."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    exists,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import BROADCAST, EVERYONE, Message, MessageStats
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.schema import message_acks, message_reads, messages, servers
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

# error > warning > request > info: the order the legacy read_messages.sh showed them in.
TYPE_RANK = case({"error": 0, "warning": 1, "request": 2}, value=messages.c.type, else_=3)


def insert_message(
    conn: Connection,
    *,
    sender: str,
    recipient: str,
    type: str,
    subject: str,
    body: str,
    ack_required: bool,
    now: float,
    actor: str,
) -> int:
    """Insert a message inside the caller's transaction and return its id."""
    message_id = int(
        conn.execute(
            insert(messages)
            .values(
                sender=sender,
                recipient=recipient,
                type=type,
                subject=subject,
                body=body,
                created_at=now,
                ack_required=ack_required,
            )
            .returning(messages.c.id)
        ).scalar_one()
    )
    append_event(
        conn,
        at=now,
        actor=actor,
        kind="message.sent",
        subject=f"message:{message_id}",
        after={"from": sender, "to": recipient, "type": type, "subject": subject},
    )
    return message_id


def _read_by(reader: str) -> ColumnElement[bool]:
    return exists().where(
        message_reads.c.message_id == messages.c.id,
        message_reads.c.reader.in_([reader, EVERYONE]),
    )


def _read_by_everyone() -> ColumnElement[bool]:
    """A message counts as read when all its recipients (every server, for 'all') read it."""
    marked_for_all = exists().where(
        message_reads.c.message_id == messages.c.id, message_reads.c.reader == EVERYONE
    )
    direct = and_(
        messages.c.recipient != BROADCAST,
        exists().where(
            message_reads.c.message_id == messages.c.id,
            message_reads.c.reader == messages.c.recipient,
        ),
    )
    server_unread = (
        select(servers.c.name)
        .where(
            not_(
                exists()
                .where(
                    message_reads.c.message_id == messages.c.id,
                    message_reads.c.reader == servers.c.name,
                )
                .correlate(messages, servers)
            )
        )
        .correlate(messages)
    )
    every_server = and_(
        messages.c.recipient == BROADCAST,
        exists(select(servers.c.name)),
        not_(exists(server_unread)),
    )
    return or_(marked_for_all, direct, every_server)


class MessageStore:
    """SQL for messages."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send_message(
        self,
        *,
        sender: str,
        recipient: str,
        type: str,
        subject: str,
        body: str,
        ack_required: bool,
        now: float,
        actor: str,
    ) -> Message:
        """Store a new unread message."""
        with write_transaction(self.engine) as conn:
            message_id = insert_message(
                conn,
                sender=sender,
                recipient=recipient,
                type=type,
                subject=subject,
                body=body,
                ack_required=ack_required,
                now=now,
                actor=actor,
            )
            return self._load(conn, [message_id], reader=None)[0]

    def get_message(self, message_id: int, *, reader: str | None = None) -> Message:
        """Return one message, its read flag seen by reader (or by all its recipients)."""
        with read_transaction(self.engine) as conn:
            found = self._load(conn, [message_id], reader=reader)
        if not found:
            raise NotFound(f"message {message_id} does not exist")
        return found[0]

    def list_messages(
        self,
        *,
        recipient: str | None,
        unread_only: bool,
        archived: bool | None,
        limit: int,
    ) -> list[Message]:
        """List messages for a recipient (theirs and 'all') or for everyone, by type then age."""
        read = _read_by(recipient) if recipient is not None else _read_by_everyone()
        query = select(messages.c.id).order_by(TYPE_RANK, messages.c.created_at, messages.c.id)
        if recipient is not None:
            query = query.where(messages.c.recipient.in_([recipient, BROADCAST]))
        if unread_only:
            query = query.where(not_(read))
        if archived is True:
            query = query.where(messages.c.archived_at.is_not(None))
        elif archived is False:
            query = query.where(messages.c.archived_at.is_(None))
        with read_transaction(self.engine) as conn:
            ids = list(conn.execute(query.limit(limit)).scalars())
            return self._load(conn, ids, reader=recipient)

    def mark_read(self, message_id: int, *, reader: str | None, now: float, actor: str) -> bool:
        """Mark a message read for reader (or for all its recipients); False if it already was."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(messages).where(messages.c.id == message_id)).one_or_none()
            if row is None:
                raise NotFound(f"message {message_id} does not exist")
            if reader is not None and row.recipient not in (reader, BROADCAST):
                raise Conflict(
                    f"message {message_id} is addressed to {row.recipient}, not {reader}"
                )
            who = reader if reader is not None else EVERYONE
            return self._insert_reads(conn, [message_id], who, now=now, actor=actor) == 1

    def mark_all_read(self, *, reader: str | None, now: float, actor: str) -> int:
        """Mark every unread message read, for one server or for everyone; return how many."""
        with write_transaction(self.engine) as conn:
            read = _read_by(reader) if reader is not None else _read_by_everyone()
            query = select(messages.c.id).where(not_(read), messages.c.archived_at.is_(None))
            if reader is not None:
                query = query.where(messages.c.recipient.in_([reader, BROADCAST]))
            ids = list(conn.execute(query).scalars())
            who = reader if reader is not None else EVERYONE
            return self._insert_reads(conn, ids, who, now=now, actor=actor)

    def acknowledge(self, message_id: int, *, server: str, now: float, actor: str) -> Message:
        """Record server's acknowledgement (which also marks the message read for it)."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(messages).where(messages.c.id == message_id)).one_or_none()
            if row is None:
                raise NotFound(f"message {message_id} does not exist")
            if not row.ack_required:
                raise Conflict(f"message {message_id} does not ask for an acknowledgement")
            if row.recipient not in (server, BROADCAST):
                raise Conflict(
                    f"message {message_id} is addressed to {row.recipient}, not {server}"
                )
            inserted = self._insert_ignore(
                conn, message_acks, {"message_id": message_id, "server": server, "acked_at": now}
            )
            if inserted:
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="message.acknowledged",
                    subject=f"message:{message_id}",
                    after={"server": server},
                )
            self._insert_reads(conn, [message_id], server, now=now, actor=actor)
            return self._load(conn, [message_id], reader=server)[0]

    def archive_read_before(self, *, cutoff: float, now: float, actor: str) -> int:
        """Archive messages read by all their recipients and created before cutoff."""
        with write_transaction(self.engine) as conn:
            ids = list(
                conn.execute(
                    select(messages.c.id).where(
                        messages.c.archived_at.is_(None),
                        messages.c.created_at < cutoff,
                        _read_by_everyone(),
                    )
                ).scalars()
            )
            if ids:
                conn.execute(update(messages).where(messages.c.id.in_(ids)).values(archived_at=now))
                for message_id in ids:
                    append_event(
                        conn,
                        at=now,
                        actor=actor,
                        kind="message.archived",
                        subject=f"message:{message_id}",
                    )
            return len(ids)

    def stats(self) -> MessageStats:
        """Count active messages (total, unread, read, by type) and archived ones."""
        active = messages.c.archived_at.is_(None)
        with read_transaction(self.engine) as conn:
            total = conn.execute(select(func.count()).where(active)).scalar_one()
            read = conn.execute(
                select(func.count()).where(active, _read_by_everyone())
            ).scalar_one()
            by_type = {
                kind: count
                for kind, count in conn.execute(
                    select(messages.c.type, func.count())
                    .where(active)
                    .group_by(messages.c.type)
                    .order_by(messages.c.type)
                )
            }
            archived = conn.execute(
                select(func.count()).where(messages.c.archived_at.is_not(None))
            ).scalar_one()
        return MessageStats(
            total=total, unread=total - read, read=read, by_type=by_type, archived=archived
        )

    # -- helpers -----------------------------------------------------------------------------

    def _insert_reads(
        self, conn: Connection, ids: list[int], reader: str, *, now: float, actor: str
    ) -> int:
        count = 0
        for message_id in ids:
            if self._insert_ignore(
                conn,
                message_reads,
                {"message_id": message_id, "reader": reader, "read_at": now},
            ):
                count += 1
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="message.read",
                    subject=f"message:{message_id}",
                    after={"reader": reader},
                )
        return count

    def _insert_ignore(self, conn: Connection, table: Any, values: dict[str, Any]) -> bool:
        make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        # SQLAlchemy keeps an INSERT's rowcount only when asked; psycopg otherwise reports -1.
        result = conn.execute(
            make(table).values(**values).on_conflict_do_nothing(),
            execution_options={"preserve_rowcount": True},
        )
        return result.rowcount == 1

    def _load(self, conn: Connection, ids: list[int], *, reader: str | None) -> list[Message]:
        if not ids:
            return []
        read = _read_by(reader) if reader is not None else _read_by_everyone()
        rows = conn.execute(
            select(messages, read.label("is_read")).where(messages.c.id.in_(ids))
        ).all()
        readers: dict[int, list[str]] = {}
        for message_id, who in conn.execute(
            select(message_reads.c.message_id, message_reads.c.reader)
            .where(message_reads.c.message_id.in_(ids))
            .order_by(message_reads.c.read_at, message_reads.c.reader)
        ):
            readers.setdefault(message_id, []).append(who)
        ackers: dict[int, list[str]] = {}
        for message_id, who in conn.execute(
            select(message_acks.c.message_id, message_acks.c.server)
            .where(message_acks.c.message_id.in_(ids))
            .order_by(message_acks.c.acked_at, message_acks.c.server)
        ):
            ackers.setdefault(message_id, []).append(who)
        by_id = {
            row.id: Message(
                id=row.id,
                sender=row.sender,
                recipient=row.recipient,
                type=row.type,
                subject=row.subject,
                body=row.body,
                created_at=from_epoch(row.created_at),
                ack_required=bool(row.ack_required),
                archived_at=from_epoch_or_none(row.archived_at),
                read=bool(row.is_read),
                read_by=tuple(readers.get(row.id, ())),
                acknowledged_by=tuple(ackers.get(row.id, ())),
            )
            for row in rows
        }
        return [by_id[message_id] for message_id in ids if message_id in by_id]
