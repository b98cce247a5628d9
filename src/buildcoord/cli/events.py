"""buildcoord events: the audit trail, oldest first, after a cursor."""

from __future__ import annotations

import json

import click

from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.output import emit_json, stamp, table


@click.command("events")
@click.option("--subject", help="Only this subject's events, e.g. job:12 or server:build1.")
@click.option(
    "--after",
    type=click.IntRange(min=0, max=2**63 - 1),
    default=0,
    show_default=True,
    help="Events after this id (the last id printed, to page on).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="At most this many.",
)
@json_option
def events(subject: str | None, after: int, limit: int, as_json: bool) -> None:
    """Show the audit trail: who changed what, when (operators by their token's name)."""
    with get_context().client() as client:
        found = client.list_events(subject=subject, after=after, limit=limit)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no events")
        return
    table(
        ["ID", "AT", "ACTOR", "KIND", "SUBJECT", "AFTER"],
        [
            (
                event.id,
                stamp(event.at),
                event.actor,
                event.kind,
                event.subject,
                _short(event.after),
            )
            for event in found
        ],
    )


def _short(value: object) -> str:
    """A one-line summary of an event's after-state, cut at 60 characters."""
    if value is None:
        return "-"
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= 60 else text[:57] + "..."
