"""buildcoord artifacts list|pin|unpin|cleanup: builds' artifacts kept on the agents."""

from __future__ import annotations

import click

from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.orders import PENDING_EXIT, report_pending, wait_for_orders
from buildcoord.cli.output import emit_json, stamp, table
from buildcoord.units import human_bytes


@click.command("list")
@click.option("--server", help="Only this server's builds.")
@click.option("--branch", help="Only this branch's builds.")
@click.option("--all", "include_removed", is_flag=True, help="Include removed builds.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
def list_sets(
    server: str | None, branch: str | None, include_removed: bool, limit: int, as_json: bool
) -> None:
    """Builds with artifacts, newest first: files, size, pinned, last good."""
    with get_context().client() as client:
        found = client.artifact_sets(
            server=server, branch=branch, include_removed=include_removed, limit=limit
        )
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("No artifacts recorded")
        return
    table(
        ["JOB", "BRANCH", "SERVER", "COMMIT", "FILES", "SIZE", "BUILT", "KEPT"],
        [
            [
                item.job_id,
                item.branch,
                item.server,
                item.commit[:12],
                item.file_count,
                human_bytes(item.total_bytes),
                stamp(item.created_at),
                _kept(item.pinned, item.last_good, item.succeeded, item.removed_at is not None),
            ]
            for item in found
        ],
    )


def _kept(pinned: bool, last_good: bool, succeeded: bool, removed: bool) -> str:
    if removed:
        return "removed"
    marks = [name for name, on in (("pinned", pinned), ("last-good", last_good)) if on]
    return ",".join(marks) or ("-" if succeeded else "failed build")


@click.command("pin")
@click.argument("job_id", metavar="JOB", type=int)
def pin(job_id: int) -> None:
    """Keep JOB's artifacts whatever retention says."""
    with get_context().client() as client:
        item = client.pin_artifacts(job_id, True)
    click.echo(f"Pinned the artifacts of job {item.job_id} on {item.server}")


@click.command("unpin")
@click.argument("job_id", metavar="JOB", type=int)
def unpin(job_id: int) -> None:
    """Let retention remove JOB's artifacts again."""
    with get_context().client() as client:
        item = client.pin_artifacts(job_id, False)
    click.echo(f"Unpinned the artifacts of job {item.job_id} on {item.server}")


@click.command("cleanup")
@click.option(
    "--keep",
    type=click.IntRange(0, 10_000),
    default=5,
    show_default=True,
    help="Builds kept per branch and server (pinned and last good ones are always kept).",
)
@click.option("--server", help="Only this server.")
@click.option("--branch", help="Only this branch.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option(
    "--wait",
    type=click.FloatRange(0, 3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the agents to report.",
)
@json_option
def cleanup(
    keep: int,
    server: str | None,
    branch: str | None,
    dry_run: bool,
    wait: float,
    as_json: bool,
) -> None:
    """Remove old builds' artifacts; each agent removes its own and reports the bytes freed.

    Exit 0 when done, 1 when an agent failed, 2 when an agent has not reported in time.
    """
    with get_context().client() as client:
        plan = client.cleanup_artifacts(keep=keep, server=server, branch=branch, dry_run=dry_run)
        orders = wait_for_orders(client, plan["orders"], wait) if plan["orders"] else []
    removals = plan["removals"]
    if as_json:
        emit_json(
            {
                "keep": keep,
                "dry_run": dry_run,
                "planned_bytes": plan["planned_bytes"],
                "removals": removals,
                "orders": orders,
            }
        )
    elif dry_run:
        if not removals:
            click.echo(f"Nothing to remove (keeping {keep} builds per branch and server)")
        for item in removals:
            click.echo(
                f"Would remove job {item.job_id} ({item.branch} on {item.server}): "
                f"{item.file_count} files, {human_bytes(item.total_bytes)}"
            )
        if removals:
            click.echo(
                f"Would free {human_bytes(plan['planned_bytes'])} from {len(removals)} builds"
            )
    else:
        freed = 0
        count = 0
        for order in orders:
            for item in (order.result or {}).get("removed", []):
                count += 1
                freed += int(item.get("freed_bytes", 0))
                click.echo(f"Removed job {item['job_id']} on {order.server}: {item['path']}")
            for item in (order.result or {}).get("refused", []):
                click.echo(f"Refused job {item.get('job_id')} on {order.server}: {item['reason']}")
        click.echo(f"Cleanup complete: removed {count} builds, freed {human_bytes(freed)}")
    if report_pending(orders):
        click.get_current_context().exit(PENDING_EXIT)
    if any(order.status == "failed" for order in orders):
        click.get_current_context().exit(1)
