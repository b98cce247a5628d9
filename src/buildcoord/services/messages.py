"""Message rules: senders and recipients, types, sizes, read state, archiving."""

from __future__ import annotations

from buildcoord import validation
from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import Forbidden, InvalidInput
from buildcoord.models import (
    BROADCAST,
    MAX_DAYS,
    MESSAGE_TYPES,
    SYSTEM,
    Message,
    MessageStats,
    Principal,
)
from buildcoord.services.authority import (
    require_operator,
    require_operator_or_agent,
    require_reader,
)
from buildcoord.store import Store


class MessageService:
    """Send, list, read, acknowledge and archive messages."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    def _as_reader(self, reader: str | None, by: Principal) -> str | None:
        """An agent always reads as its own server; others may name any server or none."""
        if by.kind == "agent":
            if reader is not None and reader != by.server:
                raise Forbidden(f"agent {by.server} may not read {reader}'s messages")
            return by.server
        if reader is not None and reader != BROADCAST:
            validation.server_name(reader, what="recipient")
        return None if reader == BROADCAST else reader

    def send(
        self,
        *,
        sender: str,
        recipient: str,
        type: str,
        subject: str,
        body: str,
        ack_required: bool = False,
        by: Principal,
    ) -> Message:
        """Send a message to a server or to ``all``."""
        require_operator_or_agent(by, "sending messages")
        validation.server_name(sender, what="sender")
        if by.kind == "agent" and sender != by.server:
            raise Forbidden(f"agent {by.server} may not send as {sender}")
        if recipient != BROADCAST:
            validation.server_name(recipient, what="recipient")
        if type not in MESSAGE_TYPES:
            raise InvalidInput(
                f"invalid message type {type!r}: expected info, warning, error or request"
            )
        validation.text(subject, what="subject", maximum=validation.SUBJECT_LIMIT)
        validation.text(body, what="body", maximum=validation.MESSAGE_BODY_LIMIT, required=False)
        return self.store.send_message(
            sender=sender,
            recipient=recipient,
            type=type,
            subject=subject,
            body=body,
            ack_required=ack_required,
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )

    def get(self, message_id: int, *, reader: str | None = None, by: Principal) -> Message:
        """Return one message."""
        require_reader(by, "reading messages")
        who = self._as_reader(reader, by)
        message = self.store.get_message(message_id, reader=who)
        if who is not None and message.recipient not in (who, BROADCAST) and by.kind == "agent":
            raise Forbidden(f"message {message_id} is not addressed to {who}")
        return message

    def list_messages(
        self,
        *,
        recipient: str | None = None,
        unread_only: bool = False,
        archived: bool | None = False,
        limit: int = 500,
        by: Principal,
    ) -> list[Message]:
        """List messages (error > warning > request > info, then oldest first)."""
        require_reader(by, "reading messages")
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be from 1 to 10000")
        return self.store.list_messages(
            recipient=self._as_reader(recipient, by),
            unread_only=unread_only,
            archived=archived,
            limit=limit,
        )

    def mark_read(self, message_id: int, *, reader: str | None = None, by: Principal) -> bool:
        """Mark one message read for reader (default: for every recipient; an agent: itself)."""
        require_operator_or_agent(by, "marking messages read")
        return self.store.mark_message_read(
            message_id,
            reader=self._as_reader(reader, by),
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )

    def mark_all_read(self, *, reader: str | None = None, by: Principal) -> int:
        """Mark every unread message read, for one server or for everyone (an agent: itself)."""
        require_operator_or_agent(by, "marking messages read")
        return self.store.mark_all_messages_read(
            reader=self._as_reader(reader, by), now=self.clock.now().timestamp(), actor=by.actor
        )

    def acknowledge(self, message_id: int, *, server: str, by: Principal) -> Message:
        """Record that a server acknowledged a message that asked for it."""
        require_operator_or_agent(by, "acknowledging messages")
        validation.server_name(server)
        if by.kind == "agent" and server != by.server:
            raise Forbidden(f"agent {by.server} may not acknowledge as {server}")
        return self.store.acknowledge_message(
            message_id, server=server, now=self.clock.now().timestamp(), actor=by.actor
        )

    def archive(self, *, days: float | None = None, by: Principal = SYSTEM) -> int:
        """Archive read messages older than ``days`` (default: the archive_days setting)."""
        require_operator(by, "archiving messages")
        age = self.settings.archive_days if days is None else days
        if not 0 <= age <= MAX_DAYS:
            raise InvalidInput(f"invalid days {age!r}: expected 0 to {MAX_DAYS:g}")
        now = self.clock.now().timestamp()
        archived = self.store.archive_read_messages(
            cutoff=now - age * 86400.0, now=now, actor=by.actor
        )
        if by.kind == "operator":  # not maintenance's hourly archiving
            self.store.record_action(
                at=now,
                actor=by.actor,
                kind="messages.archive",
                subject="messages",
                after={"days": age, "archived": archived},
            )
        return archived

    def stats(self, *, by: Principal) -> MessageStats:
        """Count messages."""
        require_reader(by, "reading message statistics")
        return self.store.message_stats()
