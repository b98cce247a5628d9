"""buildcoord health show|trends: the fleet at a glance, and over time."""

from __future__ import annotations

import click

from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.output import emit_json, stamp, table
from buildcoord.models import FleetHealth, Server
from buildcoord.units import human_bytes


@click.group("health")
def health() -> None:
    """The fleet's health: servers, builds, queue, alerts."""


@health.command("show")
@json_option
def show(as_json: bool) -> None:
    """Servers online and their figures, success rates, branches, the queue, open alerts."""
    with get_context().client() as client:
        fleet = client.fleet_health()
    if as_json:
        emit_json(fleet)
        return
    _summary(fleet)


@health.command("trends")
@click.option(
    "--window",
    type=click.Choice(["24h", "30d"]),
    default="24h",
    show_default=True,
    help="24h: a sample a minute; 30d: a sample an hour.",
)
@json_option
def trends(window: str, as_json: bool) -> None:
    """The fleet over time: servers online, queue depth, builds and success rate."""
    with get_context().client() as client:
        samples = client.fleet_trends(window)
    if as_json:
        emit_json(samples)
        return
    if not samples:
        click.echo(f"No samples in the last {window} yet (one is taken each minute)")
        return
    table(
        ("AT", "ONLINE", "QUEUED", "RUNNING", "BLOCKED", "PASSED", "FAILED", "RATE", "MEAN"),
        [
            (
                stamp(sample.at),
                f"{sample.servers_online:g}/{sample.servers_total:g}",
                f"{sample.queued:g}",
                f"{sample.running:g}",
                f"{sample.blocked:g}",
                sample.passed,
                sample.failed,
                _percent(sample.success_rate),
                "-"
                if sample.mean_duration_seconds is None
                else f"{sample.mean_duration_seconds:.0f}s",
            )
            for sample in samples
        ],
    )


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _summary(fleet: FleetHealth) -> None:
    click.echo(f"Fleet health at {stamp(fleet.at)}")
    click.echo(f"  Servers online: {fleet.servers_online} / {fleet.servers_total}")
    click.echo(
        f"  Builds:         {fleet.builds_24h} in 24 h ({_percent(fleet.success_rate_24h)} passed),"
        f" {fleet.builds_7d} in 7 days ({_percent(fleet.success_rate_7d)} passed)"
    )
    click.echo(
        f"  Queue:          {fleet.queued} queued, {fleet.running} running, {fleet.blocked} blocked"
    )
    click.echo(f"  Alerts open:    {fleet.alerts_open} ({fleet.alerts_critical} critical)")
    if fleet.servers:
        click.echo("")
        table(
            ("SERVER", "STATUS", "HEARTBEAT", "CPU", "LOAD", "MEMORY", "DISK FREE"),
            [_server_row(server) for server in fleet.servers],
        )
    if fleet.branches:
        click.echo("")
        table(
            ("BRANCH", "BUILDS", "PASSED", "MEAN", "P90", "LAST"),
            [
                (
                    branch.branch,
                    branch.builds,
                    _percent(branch.success_rate),
                    "-" if branch.mean_seconds is None else f"{branch.mean_seconds:.0f}s",
                    "-" if branch.p90_seconds is None else f"{branch.p90_seconds:.0f}s",
                    branch.last_result or "-",
                )
                for branch in fleet.branches
            ],
        )


def _server_row(server: Server) -> tuple[str, ...]:
    metrics = server.metrics
    age = (
        "never"
        if server.heartbeat_age_seconds is None
        else f"{server.heartbeat_age_seconds:.0f}s ago"
    )
    if metrics is None:
        return (server.name, server.status, age, "-", "-", "-", "-")
    memory = "-"
    if metrics.memory_used_bytes is not None and metrics.memory_total_bytes:
        memory = f"{100 * metrics.memory_used_bytes / metrics.memory_total_bytes:.0f} %"
    disk = "-" if metrics.disk_free_bytes is None else human_bytes(metrics.disk_free_bytes)
    return (
        server.name,
        f"{server.status} (quarantined)" if server.quarantined_at is not None else server.status,
        age,
        "-" if metrics.cpu_percent is None else f"{metrics.cpu_percent:.0f} %",
        "-" if metrics.load_1m is None else f"{metrics.load_1m:.2f}",
        memory,
        disk,
    )
