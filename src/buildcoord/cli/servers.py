"""buildcoord servers add|list|show|remove."""

from __future__ import annotations

import click

from buildcoord.cli.context import get_context, json_option, split_list
from buildcoord.cli.output import emit_json, stamp, table
from buildcoord.models import Server, server_label
from buildcoord.units import human_bytes


@click.group()
def servers() -> None:
    """Register and inspect build servers."""


@servers.command("add")
@click.argument("name")
@click.option("--labels", help="Comma-separated labels, e.g. os=debian,arch=amd64,mvn.")
def add(name: str, labels: str | None) -> None:
    """Register NAME; prints its agent token as the last line (shown only once)."""
    with get_context().client() as client:
        server, token = client.register_server(name, split_list(labels))
    click.echo(f"Registered server {server.name} (labels: {', '.join(server.labels) or 'none'})")
    click.echo("Agent token (store it now; it is not shown again):", err=True)
    click.echo(token)


@servers.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List servers with status, heartbeat age and metrics."""
    with get_context().client() as client:
        found = client.list_servers()
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("No servers registered")
        return
    table(
        ["NAME", "STATUS", "HEARTBEAT", "CPU", "MEMORY", "DISK FREE", "JOBS", "LABELS", "REPORTED"],
        [_row(server) for server in found],
    )


def _row(server: Server) -> list[str]:
    metrics = server.metrics
    age = (
        "never"
        if server.heartbeat_age_seconds is None
        else f"{server.heartbeat_age_seconds:.0f}s ago"
    )
    cpu = "-" if metrics is None or metrics.cpu_percent is None else f"{metrics.cpu_percent:.0f}%"
    memory = "-"
    if metrics is not None and metrics.memory_used_bytes is not None:
        memory = (
            f"{human_bytes(metrics.memory_used_bytes)}/{human_bytes(metrics.memory_total_bytes)}"
        )
    disk = "-" if metrics is None else human_bytes(metrics.disk_free_bytes)
    jobs = ",".join(str(job) for job in server.running_jobs) or "-"
    return [
        server.name,
        f"{server.status} (quarantined)" if server.quarantined_at is not None else server.status,
        age,
        cpu,
        memory,
        disk,
        jobs,
        ",".join(server.labels) or "-",
        ",".join(server.reported_labels) or "-",
    ]


@servers.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show one server."""
    with get_context().client() as client:
        server = client.get_server(name)
    if as_json:
        emit_json(server)
        return
    click.echo(f"Server:         {server.name}")
    click.echo(f"Status:         {server.status}")
    click.echo(f"Labels:         {', '.join(server.labels) or 'none'}")
    click.echo(f"Reported:       {', '.join(server.reported_labels) or 'none'}")
    click.echo(f"Pinned by:      {server_label(server.name)}")
    click.echo(f"Registered:     {stamp(server.registered_at)}")
    click.echo(f"Last heartbeat: {stamp(server.last_heartbeat_at)}")
    click.echo(f"Agent version:  {server.agent_version or '-'}")
    click.echo(f"Running jobs:   {', '.join(map(str, server.running_jobs)) or 'none'}")
    if server.quarantined_at is not None:
        click.echo(
            f"Quarantined:    {stamp(server.quarantined_at)}: {server.quarantine_reason}"
            f" (buildcoord servers resume {server.name})"
        )
    if server.metrics is not None:
        for key, value in _metrics(server):
            click.echo(f"  {key}: {value}")


def _metrics(server: Server) -> list[tuple[str, object]]:
    assert server.metrics is not None
    return [
        (name, getattr(server.metrics, name))
        for name in server.metrics.__dataclass_fields__
        if getattr(server.metrics, name) is not None
    ]


@servers.command("rotate-token")
@click.argument("name")
@click.option(
    "--grace",
    type=click.FloatRange(min=0, max=7 * 86400),
    default=3600,
    show_default=True,
    help="Seconds the old token stays valid (up to 7 days).",
)
def rotate_token(name: str, grace: float) -> None:
    """Give NAME's agent a new token without a restart of anything: the old one keeps
    working for GRACE seconds; prints the new token as the last line (shown only once)."""
    with get_context().client() as client:
        rotated = client.rotate_agent_token(name, grace_seconds=grace)
    click.echo(
        f"New agent token for {name}; the old one works until {stamp(rotated.old_valid_until)}"
    )
    click.echo(rotated.secret)


@servers.command("quarantine")
@click.argument("name")
@click.option("--reason", required=True, help="Why (at most 500 characters).")
def quarantine(name: str, reason: str) -> None:
    """Stop giving a server new work; its running jobs go on."""
    with get_context().client() as client:
        client.quarantine_server(name, reason)
    click.echo(f"Server {name} quarantined: it gets no new work until 'servers resume {name}'")


@servers.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Give a quarantined server (a black hole, or by hand) work again."""
    with get_context().client() as client:
        client.resume_server(name)
    click.echo(f"Server {name} resumed: it gets new work again")


@servers.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Forget NAME and revoke its agent token (refused while it runs a job)."""
    with get_context().client() as client:
        client.remove_server(name)
    click.echo(f"Removed server {name}")
