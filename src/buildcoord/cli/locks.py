"""buildcoord lock acquire|release|renew|list|recover: named leases shared by the fleet."""

from __future__ import annotations

import click

from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.output import emit_json, stamp, table


@click.group("lock")
def lock() -> None:
    """Named locks and counting semaphores with fencing tokens."""


@lock.command("acquire")
@click.argument("name")
@click.option("--holder", required=True, help="Who takes the lease (a server name).")
@click.option("--ttl", type=float, help="Lease seconds (default 600).")
@click.option("--capacity", type=int, help="Holders allowed at once (a semaphore); default 1.")
def acquire(name: str, holder: str, ttl: float | None, capacity: int | None) -> None:
    """Take lock NAME; prints the fencing token as the last line; exit 1 if held."""
    with get_context().client() as client:
        grant = client.acquire_lock(name, holder, ttl=ttl, capacity=capacity)
    verb = "Re-acquired" if grant.reentered else "Acquired"
    click.echo(f"{verb} lock: {name} (holder {holder}, expires {stamp(grant.expires_at)})")
    click.echo(grant.token)


@lock.command("renew")
@click.argument("name")
@click.option("--holder", required=True)
@click.option("--token", "fencing_token", type=int, help="Fencing token from acquire.")
@click.option("--ttl", type=float)
def renew(name: str, holder: str, fencing_token: int | None, ttl: float | None) -> None:
    """Extend a lease."""
    with get_context().client() as client:
        grant = client.renew_lock(name, holder, token=fencing_token, ttl=ttl)
    click.echo(f"Renewed lock: {name} until {stamp(grant.expires_at)}")


@lock.command("release")
@click.argument("name")
@click.option("--holder", help="The holder whose lease ends.")
@click.option("--token", "fencing_token", type=int, help="Fencing token from acquire.")
@click.option("--force", is_flag=True, help="Operator: release even if someone else holds it.")
def release(name: str, holder: str | None, fencing_token: int | None, force: bool) -> None:
    """Release a lease (only its holder may, unless an operator forces it)."""
    with get_context().client() as client:
        released = client.release_lock(name, holder, token=fencing_token, force=force)
    if not released:
        click.echo(f"Lock {name} was not held")
    for who in released:
        click.echo(f"Released lock: {name} (was held by {who})")


@lock.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List locks and holders."""
    with get_context().client() as client:
        found = client.list_locks()
    if as_json:
        emit_json(found)
        return
    rows = []
    for item in found:
        if not item.holders:
            rows.append([item.name, item.capacity, "-", "-", "-", "free"])
        for held in item.holders:
            state = "EXPIRED" if held.expired else "held"
            rows.append(
                [item.name, item.capacity, held.holder, held.token, stamp(held.expires_at), state]
            )
    if not rows:
        click.echo("No locks")
        return
    table(["NAME", "CAPACITY", "HOLDER", "TOKEN", "EXPIRES", "STATE"], rows)


@lock.command("recover")
@json_option
def recover(as_json: bool) -> None:
    """Release expired leases now (the coordinator also does this every second)."""
    with get_context().client() as client:
        released = client.recover_locks()
    if as_json:
        emit_json(released)
        return
    if not released:
        click.echo("No expired locks found")
    for item in released:
        click.echo(
            f"Lock '{item.name}' expired (held by: {item.holder}, "
            f"expired at: {stamp(item.expired_at)}): released"
        )
