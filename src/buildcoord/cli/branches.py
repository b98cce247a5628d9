"""buildcoord branches add|list|show|set|toggle|remove|queue-all|check-updates."""

from __future__ import annotations

from collections.abc import Sequence

import click

from buildcoord.cli.context import get_context, json_option, split_list
from buildcoord.cli.output import emit_json, stamp, table
from buildcoord.client import Client
from buildcoord.models import Branch, BranchCheck

SCHEDULE_HELP = (
    "Cron schedule, 5 fields in UTC (minute hour day-of-month month day-of-week) or an alias"
    " such as @daily: the tip is queued at each due time unless that commit has a job."
)


@click.group()
def branches() -> None:
    """Branches set up for building (the build command is set here and nowhere else)."""


@branches.command("add")
@click.argument("name")
@click.option("--repo", required=True, help="Repository path or URL.")
@click.option("--command", help="Build command run by 'bash -c' (none: claimable by hand only).")
@click.option("--priority", type=int, default=5, show_default=True, help="1 (highest) to 10.")
@click.option("--labels", help="Comma-separated labels a server needs to build it.")
@click.option("--timeout", type=float, help="Seconds before a build is stopped.")
@click.option("--retry-on-failure", is_flag=True, help="Retry a failed build (new attempt).")
@click.option(
    "--tag/--no-tag",
    "tag_on_success",
    default=True,
    show_default=True,
    help="Tag each successful build build-success-<branch>-<stamp> in the repository.",
)
@click.option(
    "--push-tags/--no-push-tags",
    default=True,
    show_default=True,
    help="Push success tags on to the repository's own remote, where it has one.",
)
@click.option(
    "--auto-build/--no-auto-build",
    default=True,
    show_default=True,
    help="Queue each new tip by itself (polling and webhooks).",
)
@click.option("--schedule", metavar="CRON", help=SCHEDULE_HELP)
@click.option(
    "--enabled/--disabled",
    default=True,
    show_default=True,
    help="A disabled branch is never polled nor queued by itself.",
)
@click.option("--build-now", is_flag=True, help="Queue the current tip now (default: record it).")
def add(
    name: str,
    repo: str,
    command: str | None,
    priority: int,
    labels: str | None,
    timeout: float | None,
    retry_on_failure: bool,
    tag_on_success: bool,
    push_tags: bool,
    auto_build: bool,
    schedule: str | None,
    enabled: bool,
    build_now: bool,
) -> None:
    """Set up branch NAME; its current tip is recorded as seen, not built (see --build-now)."""
    with get_context().client() as client:
        known = _newest_job_id(client, name) if build_now else 0
        branch = client.add_branch(
            name,
            repo=repo,
            command=command,
            priority=priority,
            labels=split_list(labels),
            timeout_seconds=timeout,
            retry_on_failure=retry_on_failure,
            tag_on_success=tag_on_success,
            push_tags=push_tags,
            auto_build=auto_build,
            schedule=schedule,
            enabled=enabled,
            build_now=build_now,
        )
        tip = branch.seen_commit
        if tip is None:
            done = "not read yet (repository unreachable?): the first check records it"
        elif build_now:
            done = f"{tip[:12]} {_build_of(client, name, tip, known)}"
        else:
            done = f"{tip[:12]} recorded as seen, not built"
    click.echo(f"Added branch {branch.name} ({branch.repo})")
    click.echo(f"  tip {done}")


def _newest_job_id(client: Client, branch: str) -> int:
    """The id of the branch's newest job (0 for none): jobs after it are new."""
    return max((job.id for job in client.list_jobs(branch=branch, limit=1)), default=0)


def _build_of(client: Client, branch: str, commit: str, after_id: int) -> str:
    """What --build-now did: a commit is built at most once per branch."""
    jobs = [job for job in client.list_jobs(branch=branch) if job.commit == commit]
    if not jobs:
        return "not queued (no job at that commit)"
    newest = max(jobs, key=lambda job: job.id)
    if newest.id > after_id:  # queued by this add (it may have started already)
        return f"queued as job {newest.id}"
    return f"not queued again: job {newest.id} is {newest.status}"


@branches.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List branches."""
    with get_context().client() as client:
        found = client.list_branches()
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("No branches set up")
        return
    table(
        ["NAME", "ON", "AUTO", "SCHEDULE", "PRIORITY", "SEEN", "CHECKED", "REPO", "ERROR"],
        [
            [
                b.name,
                "yes" if b.enabled else "no",
                "yes" if b.auto_build else "no",
                b.schedule or "-",
                b.priority,
                (b.seen_commit or "-")[:12],
                stamp(b.checked_at) if b.checked_at else "-",
                b.repo,
                (b.check_error or "-").replace("\n", " ")[:60],
            ]
            for b in found
        ],
    )


@branches.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show one branch."""
    with get_context().client() as client:
        branch = client.get_branch(name)
    if as_json:
        emit_json(branch)
        return
    click.echo(f"Branch:     {branch.name}")
    click.echo(f"Repository: {branch.repo}")
    click.echo(f"Priority:   {branch.priority}")
    click.echo(f"Labels:     {', '.join(branch.labels) or 'none'}")
    timeout = "none" if branch.timeout_seconds is None else f"{branch.timeout_seconds:g} s"
    click.echo(f"Timeout:    {timeout}")
    click.echo(f"Retry failed builds: {'yes' if branch.retry_on_failure else 'no'}")
    click.echo(f"Tag successful builds: {'yes' if branch.tag_on_success else 'no'}")
    click.echo(f"Push tags to the repository's remote: {'yes' if branch.push_tags else 'no'}")
    click.echo(f"Enabled:    {'yes' if branch.enabled else 'no (never polled nor queued)'}")
    click.echo(f"Auto-build: {'yes' if branch.auto_build else 'no'}")
    click.echo(f"Schedule:   {branch.schedule or 'none'} (UTC)")
    if branch.schedule:
        next_run = stamp(branch.next_scheduled_at) if branch.next_scheduled_at else "-"
        click.echo(f"Next scheduled build: {next_run}")
    click.echo(f"Seen tip:   {branch.seen_commit or 'none yet'}")
    click.echo(f"Last check: {stamp(branch.checked_at) if branch.checked_at else 'never'}")
    if branch.check_error:
        click.echo(f"Check error: {branch.check_error}")
    click.echo(f"Added:      {stamp(branch.created_at)}")
    click.echo("Command:")
    click.echo(f"  {branch.command}" if branch.command else "  (none: jobs are claimed by hand)")


@branches.command("set")
@click.argument("name")
@click.option("--tag/--no-tag", "tag_on_success", default=None, help="Tag successful builds.")
@click.option("--push-tags/--no-push-tags", default=None, help="Push tags to the remote.")
@click.option("--retry-on-failure/--no-retry-on-failure", default=None, help="Retry failed builds.")
@click.option("--auto-build/--no-auto-build", default=None, help="Queue new tips by itself.")
@click.option("--schedule", metavar="CRON", help=SCHEDULE_HELP + ' "" removes it.')
@click.option("--enabled/--disabled", default=None, help="Poll and queue the branch at all.")
def set_(
    name: str,
    tag_on_success: bool | None,
    push_tags: bool | None,
    retry_on_failure: bool | None,
    auto_build: bool | None,
    schedule: str | None,
    enabled: bool | None,
) -> None:
    """Change branch NAME's settings (the ones not given stay)."""
    given = (tag_on_success, push_tags, retry_on_failure, auto_build, schedule, enabled)
    if all(value is None for value in given):
        raise click.UsageError(
            "nothing to change: give --tag/--no-tag, --push-tags/--no-push-tags,"
            " --retry-on-failure/--no-retry-on-failure, --auto-build/--no-auto-build,"
            " --schedule CRON or --enabled/--disabled"
        )
    with get_context().client() as client:
        branch = client.update_branch(
            name,
            tag_on_success=tag_on_success,
            push_tags=push_tags,
            retry_on_failure=retry_on_failure,
            auto_build=auto_build,
            schedule=schedule,
            enabled=enabled,
        )
    click.echo(_switches(branch))


@branches.command("toggle")
@click.argument("name")
@click.argument("state", type=click.Choice(["on", "off"]))
def toggle(name: str, state: str) -> None:
    """Turn branch NAME on or off (off: never polled nor queued by itself)."""
    with get_context().client() as client:
        branch = client.update_branch(name, enabled=state == "on")
    click.echo(f"Branch {branch.name} {'enabled' if branch.enabled else 'disabled'}")


def _switches(branch: Branch) -> str:
    def on(value: bool) -> str:
        return "on" if value else "off"

    return (
        f"Branch {branch.name}: {'enabled' if branch.enabled else 'disabled'}, "
        f"auto-build {on(branch.auto_build)}, schedule {branch.schedule or 'none'}, "
        f"tag {on(branch.tag_on_success)}, push tags {on(branch.push_tags)}, "
        f"retry {on(branch.retry_on_failure)}"
    )


@branches.command("queue-all")
@json_option
def queue_all(as_json: bool) -> None:
    """Queue the remote tip of every enabled branch (unless that commit has a job already)."""
    with get_context().client() as client:
        results = client.queue_all_branches()
    _report(results, as_json=as_json)


@branches.command("check-updates")
@click.argument("names", nargs=-1)
@json_option
def check_updates(names: tuple[str, ...], as_json: bool) -> None:
    """Read the remote tips of enabled auto-build branches (or NAMES) and queue new ones."""
    with get_context().client() as client:
        results = client.check_branch_updates(list(names) if names else None)
    _report(results, as_json=as_json)


def _report(results: Sequence[BranchCheck], *, as_json: bool) -> None:
    if as_json:
        emit_json(list(results))
        return
    if not results:
        click.echo("No enabled branches to look at")
        return
    for result in results:
        commit = (result.commit or "")[:12]
        job = (
            f" job {result.job_id}"
            if result.job_id is not None and result.outcome == "queued"
            else ""
        )
        detail = f": {result.detail}" if result.detail else ""
        click.echo(f"{result.branch}: {result.outcome} {commit}{job}{detail}".replace("  ", " "))
    failed = [result for result in results if result.outcome == "failed"]
    if failed:
        raise SystemExit(1)


@branches.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Forget branch NAME (its jobs stay)."""
    with get_context().client() as client:
        client.remove_branch(name)
    click.echo(f"Removed branch {name}")
