"""buildcoord msg send|list|show|read|read-all|ack|archive|stats: messages between servers."""

from __future__ import annotations

import sys

import click

from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.output import emit_json, stamp
from buildcoord.models import MESSAGE_TYPES


@click.group("msg")
def msg() -> None:
    """Messages between servers."""


@msg.command("send")
@click.option("--from", "sender", required=True, help="Sending server.")
@click.option("--to", "recipient", required=True, help="A server, or 'all'.")
@click.option("--type", "kind", type=click.Choice(MESSAGE_TYPES), default="info", show_default=True)
@click.option("--subject", required=True, help="At most 100 characters.")
@click.option("--body", default="", help="At most 10,000 characters; '-' reads stdin.")
@click.option("--require-ack", is_flag=True, help="Ask the recipient to acknowledge.")
def send(
    sender: str, recipient: str, kind: str, subject: str, body: str, require_ack: bool
) -> None:
    """Send a message; prints its id as the last line."""
    if body == "-":
        body = sys.stdin.read()
    with get_context().client() as client:
        message = client.send_message(
            sender=sender,
            recipient=recipient,
            type=kind,
            subject=subject,
            body=body,
            ack_required=require_ack,
        )
    click.echo(f"Message sent: {message.id}")
    click.echo(f"  Subject: {message.subject} ({len(message.subject)} chars)")
    click.echo(f"  Body: {len(message.body)} characters")
    if message.ack_required:
        click.echo(f"  Ack required from {message.recipient}")
    click.echo(message.id)


@msg.command("list")
@click.option("--to", "recipient", help="Messages for this server (and those to all).")
@click.option("--unread", is_flag=True, help="Only unread ones.")
@click.option("--archived", is_flag=True, help="Archived messages instead of current ones.")
@click.option("--limit", type=int, default=500, show_default=True)
@json_option
def list_(recipient: str | None, unread: bool, archived: bool, limit: int, as_json: bool) -> None:
    """List messages: error > warning > request > info, then oldest first."""
    with get_context().client() as client:
        found = client.list_messages(
            recipient=recipient, unread=unread, archived="yes" if archived else "no", limit=limit
        )
    if as_json:
        emit_json(found)
        return
    if not found:
        who = f" for {recipient}" if recipient else ""
        click.echo(f"No {'unread ' if unread else ''}messages{who}")
    for message in found:
        mark = " " if message.read else "*"
        click.echo(
            f"{mark}{message.id}: [{message.type.upper()}] [{message.sender} → "
            f"{message.recipient}] {message.subject} ({stamp(message.created_at)})"
        )


@msg.command("show")
@click.argument("message_id", type=int)
@click.option("--as", "reader", help="Read state as seen by this server.")
@json_option
def show(message_id: int, reader: str | None, as_json: bool) -> None:
    """Show one message in full."""
    with get_context().client() as client:
        message = client.get_message(message_id, reader=reader)
    if as_json:
        emit_json(message)
        return
    click.echo(f"[{message.type.upper()}] {message.sender} -> {message.recipient}")
    click.echo(f"Subject: {message.subject}")
    click.echo(f"Time: {stamp(message.created_at)}")
    click.echo(
        f"Read: {'yes' if message.read else 'no'} (by {', '.join(message.read_by) or 'nobody'})"
    )
    if message.ack_required:
        click.echo(f"Acknowledged by: {', '.join(message.acknowledged_by) or 'nobody yet'}")
    click.echo("")
    click.echo(message.body)


@msg.command("read")
@click.argument("message_id", type=int)
@click.option("--for", "reader", help="Mark it read for this server only (default: everyone).")
def read(message_id: int, reader: str | None) -> None:
    """Mark one message read."""
    with get_context().client() as client:
        changed = client.mark_message_read(message_id, reader=reader)
    if changed:
        click.echo(f"Message {message_id} marked as read")
    else:
        click.echo(f"Message {message_id} was already marked as read")


@msg.command("read-all")
@click.option("--for", "reader", help="Only messages to this server (and to all), for it.")
def read_all(reader: str | None) -> None:
    """Mark every unread message read."""
    with get_context().client() as client:
        count = client.mark_all_messages_read(reader=reader)
    click.echo(f"Marked {count} messages as read" + (f" for {reader}" if reader else ""))


@msg.command("ack")
@click.argument("message_id", type=int)
@click.option("--server", required=True, help="The acknowledging server.")
def ack(message_id: int, server: str) -> None:
    """Acknowledge a message that asked for it."""
    with get_context().client() as client:
        client.acknowledge_message(message_id, server=server)
    click.echo(f"Message {message_id} acknowledged by {server}")


@msg.command("archive")
@click.option("--days", type=float, help="Archive read messages older than this (default 30).")
def archive(days: float | None) -> None:
    """Archive old read messages; they stay queryable with list --archived."""
    with get_context().client() as client:
        count = client.archive_messages(days=days)
    click.echo(f"Archived {count} messages" if count else "No old messages to archive")


@msg.command("stats")
@json_option
def stats(as_json: bool) -> None:
    """Message statistics."""
    with get_context().client() as client:
        found = client.message_stats()
    if as_json:
        emit_json(found)
        return
    click.echo("Message Statistics:")
    click.echo(f"  Total messages: {found.total}")
    click.echo(f"  Unread: {found.unread}")
    click.echo(f"  Read: {found.read}")
    click.echo("")
    click.echo("Messages by type:")
    for kind, count in sorted(found.by_type.items()):
        click.echo(f"{kind}: {count}")
    click.echo("")
    click.echo(f"  Archived messages: {found.archived}")
