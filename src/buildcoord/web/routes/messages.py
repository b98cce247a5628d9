"""/api/v1/messages: messages between servers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status

from buildcoord.models import Message, MessageStats
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import (
    AckIn,
    ArchiveIn,
    Changed,
    Count,
    MessageIn,
    ReaderIn,
    RowId,
    limit_query,
)

router = APIRouter(prefix="/messages", tags=["messages"])


@router.post("", status_code=status.HTTP_201_CREATED)
def send(body: MessageIn, services: Services, caller: Caller) -> Message:
    """Send a message to a server or to all."""
    return services.messages.send(
        sender=body.sender,
        recipient=body.recipient,
        type=body.type,
        subject=body.subject,
        body=body.body,
        ack_required=body.ack_required,
        by=caller,
    )


@router.get("")
def list_messages(
    services: Services,
    caller: Caller,
    to: str | None = None,
    unread: bool = False,
    archived: Literal["no", "yes", "any"] = "no",
    limit: int = limit_query(500, 10_000),
) -> list[Message]:
    """List messages, error > warning > request > info, then oldest first."""
    return services.messages.list_messages(
        recipient=to,
        unread_only=unread,
        archived={"no": False, "yes": True, "any": None}[archived],
        limit=limit,
        by=caller,
    )


@router.get("/stats")
def stats(services: Services, caller: Caller) -> MessageStats:
    """Count messages."""
    return services.messages.stats(by=caller)


@router.post("/read-all")
def read_all(body: ReaderIn, services: Services, caller: Caller) -> Count:
    """Mark every unread message read, for one server or for everyone."""
    return Count(count=services.messages.mark_all_read(reader=body.reader, by=caller))


@router.post("/archive")
def archive(body: ArchiveIn, services: Services, caller: Caller) -> Count:
    """Archive read messages older than N days (they stay queryable)."""
    days = None if body.days is None else float(body.days)
    return Count(count=services.messages.archive(days=days, by=caller))


@router.get("/{message_id}")
def get(
    message_id: RowId, services: Services, caller: Caller, reader: str | None = None
) -> Message:
    """Show one message."""
    return services.messages.get(message_id, reader=reader, by=caller)


@router.post("/{message_id}/read")
def read(message_id: RowId, body: ReaderIn, services: Services, caller: Caller) -> Changed:
    """Mark one message read."""
    return Changed(changed=services.messages.mark_read(message_id, reader=body.reader, by=caller))


@router.post("/{message_id}/ack")
def ack(message_id: RowId, body: AckIn, services: Services, caller: Caller) -> Message:
    """Acknowledge a message that asked for it."""
    return services.messages.acknowledge(message_id, server=body.server, by=caller)
