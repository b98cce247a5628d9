"""buildcoord alerts list|show|ack|silence|unsilence|silences: what the health monitor found."""

from __future__ import annotations

import json
import math

import click
from pydantic import TypeAdapter

from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.output import emit_json, stamp, table
from buildcoord.models import Alert, AlertDelivery


@click.group("alerts")
def alerts() -> None:
    """Alerts the health monitor opened and resolved."""


@alerts.command("list")
@click.option("--all", "include_resolved", is_flag=True, help="Resolved alerts too.")
@click.option("--rule", help="Only this rule's alerts (heartbeat_stale, disk_low, ...).")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
def list_(include_resolved: bool, rule: str | None, limit: int, as_json: bool) -> None:
    """List alerts, newest first: the open ones, or every one with --all."""
    with get_context().client() as client:
        found = client.list_alerts(include_resolved=include_resolved, rule=rule, limit=limit)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("No alerts" if include_resolved else "No open alerts")
        return
    table(
        ("ID", "STATE", "SEVERITY", "RULE", "SUBJECT", "SEEN", "SINCE", "SUMMARY"),
        [
            (
                alert.id,
                _state(alert),
                alert.severity,
                alert.rule,
                alert.subject,
                alert.count,
                stamp(alert.opened_at),
                alert.summary,
            )
            for alert in found
        ],
    )


@alerts.command("show")
@click.argument("alert_id", type=int)
@json_option
def show(alert_id: int, as_json: bool) -> None:
    """Show one alert in full."""
    with get_context().client() as client:
        alert = client.get_alert(alert_id)
        deliveries = client.alert_deliveries(alert_id)
    if as_json:
        shown = TypeAdapter(Alert).dump_python(alert, mode="json")
        shown["deliveries"] = TypeAdapter(list[AlertDelivery]).dump_python(deliveries, mode="json")
        emit_json(shown)
        return
    click.echo(f"Alert {alert.id}: {alert.summary}")
    click.echo(f"  Rule:     {alert.rule} ({alert.severity})")
    click.echo(f"  Subject:  {alert.subject}")
    click.echo(f"  State:    {_state(alert)}")
    click.echo(f"  Opened:   {stamp(alert.opened_at)}")
    click.echo(f"  Seen:     {alert.count} time(s), last {stamp(alert.last_seen_at)}")
    if alert.clear_since is not None and alert.resolved_at is None:
        click.echo(f"  Clear since: {stamp(alert.clear_since)}")
    if alert.resolved_at is not None:
        click.echo(f"  Resolved: {stamp(alert.resolved_at)}")
    if alert.acknowledged_at is not None:
        click.echo(f"  Acknowledged: {stamp(alert.acknowledged_at)} by {alert.acknowledged_by}")
    if alert.details:
        click.echo(f"  Details:  {json.dumps(alert.details, sort_keys=True)}")
    if deliveries:
        click.echo("  Notifications:")
    for each in deliveries:
        if each.sent_at is not None:
            outcome = f"sent {stamp(each.sent_at)}"
        elif each.gave_up_at is not None:
            outcome = f"given up {stamp(each.gave_up_at)}: {each.last_error}"
        elif each.last_error:
            outcome = f"retry at {stamp(each.due_at)} after: {each.last_error}"
        else:
            outcome = "queued"
        click.echo(f"    {each.notifier} ({each.event}), {each.attempts} attempt(s): {outcome}")


@alerts.command("ack")
@click.argument("alert_id", type=int)
def ack(alert_id: int) -> None:
    """Acknowledge an open alert: someone is on it."""
    with get_context().client() as client:
        alert = client.acknowledge_alert(alert_id)
    click.echo(f"Alert {alert.id} acknowledged by {alert.acknowledged_by}: {alert.summary}")


@alerts.command("silence")
@click.argument("target", metavar="RULE[:SUBJECT]")
@click.option("--for", "length", required=True, help="How long: 90s, 30m, 2h, 7d (at most 90d).")
@click.option("--comment", default="", help="Why (at most 500 characters).")
def silence(target: str, length: str, comment: str) -> None:
    """Silence a rule's alerts, or one subject's: recorded, marked silenced, nobody notified.

    Prints the silence's id last (for ``alerts unsilence``)."""
    rule, _, subject = target.partition(":")
    seconds = parse_length(length)
    with get_context().client() as client:
        made = client.silence_alerts(rule, subject or None, seconds=seconds, comment=comment)
    who = f"{made.rule}:{made.subject}" if made.subject else f"{made.rule} (every subject)"
    click.echo(f"Silenced {who} until {stamp(made.until)}")
    click.echo(made.id)


@alerts.command("unsilence")
@click.argument("silence_id", type=int)
def unsilence(silence_id: int) -> None:
    """End a silence now."""
    with get_context().client() as client:
        ended = client.end_silence(silence_id)
    click.echo(f"Silence {ended.id} of {ended.rule}:{ended.subject or '*'} ended")


@alerts.command("silences")
@click.option("--all", "include_ended", is_flag=True, help="Ended silences too.")
@json_option
def silences(include_ended: bool, as_json: bool) -> None:
    """List silences: those in force, or every one with --all."""
    with get_context().client() as client:
        found = client.list_silences(include_ended=include_ended)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("No silences" if include_ended else "No silences in force")
        return
    table(
        ("ID", "RULE", "SUBJECT", "UNTIL", "BY", "COMMENT"),
        [
            (
                each.id,
                each.rule,
                each.subject or "*",
                stamp(each.until),
                each.created_by,
                each.comment,
            )
            for each in found
        ],
    )


@alerts.command("test-notify")
@click.argument("name")
def test_notify(name: str) -> None:
    """Send a test message through a configured notifier; exit 1 if it was not taken."""
    with get_context().client() as client:
        error = client.test_notifier(name)
    if error is not None:
        raise click.ClickException(f"notifier {name}: {error}")
    click.echo(f"Test message sent through {name}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_length(text: str) -> float:
    """Seconds in ``90s``, ``30m``, ``2h``, ``7d`` or a plain number of seconds."""
    value = text.strip().lower()
    scale = _UNITS.get(value[-1:])
    number = value[:-1] if scale is not None else value
    try:
        amount = float(number)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount <= 0:
        raise click.BadParameter(
            f"{text!r} is not a length of time (examples: 90s, 30m, 2h, 7d)", param_hint="--for"
        )
    return amount * (scale or 1)


def _state(alert: Alert) -> str:
    if alert.resolved_at is not None:
        return "resolved"
    if alert.silenced:
        return "silenced"
    return "acknowledged" if alert.acknowledged_at is not None else "open"
