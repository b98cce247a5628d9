"""buildcoord token create|list|revoke."""

from __future__ import annotations

import click

from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.output import emit_json, stamp, table


@click.group("token")
def token() -> None:
    """Operator and read-only API tokens (agent tokens come from 'servers add')."""


@token.command("create")
@click.argument("name")
@click.option(
    "--kind", type=click.Choice(["operator", "read"]), default="operator", show_default=True
)
def create(name: str, kind: str) -> None:
    """Create a token; prints its secret as the last line (shown only once)."""
    with get_context().client() as client:
        issued = client.create_token(name, kind=kind)
    click.echo(f"Created {issued.token.kind} token {issued.token.id} ({issued.token.name})")
    click.echo(issued.secret)


@token.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List tokens (never their secrets)."""
    with get_context().client() as client:
        found = client.list_tokens()
    if as_json:
        emit_json(found)
        return
    table(
        ["ID", "KIND", "NAME", "SERVER", "CREATED", "REVOKED"],
        [
            [t.id, t.kind, t.name, t.server or "-", stamp(t.created_at), stamp(t.revoked_at)]
            for t in found
        ],
    )


@token.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke a token at once."""
    with get_context().client() as client:
        client.revoke_token(token_id)
    click.echo(f"Revoked token {token_id}")
