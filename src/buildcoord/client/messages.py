"""The client's calls to /messages: sending, reading, acknowledging and archiving."""

from __future__ import annotations

from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import Message, MessageStats


class MessageEndpoints(Transport):
    """Messages between operators and servers."""

    def send_message(
        self,
        *,
        sender: str,
        recipient: str,
        type: str,
        subject: str,
        body: str,
        ack_required: bool = False,
    ) -> Message:
        """Send a message."""
        payload = {
            "sender": sender,
            "recipient": recipient,
            "type": type,
            "subject": subject,
            "body": body,
            "ack_required": ack_required,
        }
        return self._parse(Message, self._call("POST", "/messages", json=payload))

    def list_messages(
        self,
        *,
        recipient: str | None = None,
        unread: bool = False,
        archived: str = "no",
        limit: int = 500,
    ) -> list[Message]:
        """List messages."""
        params: dict[str, Any] = {"unread": unread, "archived": archived, "limit": limit}
        if recipient is not None:
            params["to"] = recipient
        return self._parse(list[Message], self._call("GET", "/messages", params=params))

    def get_message(self, message_id: int, *, reader: str | None = None) -> Message:
        """Show one message."""
        params = {"reader": reader} if reader else {}
        return self._parse(Message, self._call("GET", f"/messages/{message_id}", params=params))

    def mark_message_read(self, message_id: int, *, reader: str | None = None) -> bool:
        """Mark one message read; False if it already was."""
        data = self._call("POST", f"/messages/{message_id}/read", json={"reader": reader})
        return bool(data["changed"])

    def mark_all_messages_read(self, *, reader: str | None = None) -> int:
        """Mark all unread messages read; return how many."""
        return int(self._call("POST", "/messages/read-all", json={"reader": reader})["count"])

    def acknowledge_message(self, message_id: int, *, server: str) -> Message:
        """Acknowledge a message."""
        data = self._call("POST", f"/messages/{message_id}/ack", json={"server": server})
        return self._parse(Message, data)

    def archive_messages(self, *, days: float | None = None) -> int:
        """Archive old read messages; return how many."""
        return int(self._call("POST", "/messages/archive", json={"days": days})["count"])

    def message_stats(self) -> MessageStats:
        """Count messages."""
        return self._parse(MessageStats, self._call("GET", "/messages/stats"))
