"""buildcoord branches add|list|show|remove."""

from __future__ import annotations

import click

from buildcoord.cli.context import get_context, json_option, split_list
from buildcoord.cli.output import emit_json, stamp, table


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
) -> None:
    """Set up branch NAME."""
    with get_context().client() as client:
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
        )
    click.echo(f"Added branch {branch.name} ({branch.repo})")


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
        ["NAME", "PRIORITY", "LABELS", "TIMEOUT", "REPO", "COMMAND"],
        [
            [
                b.name,
                b.priority,
                ",".join(b.labels) or "-",
                "-" if b.timeout_seconds is None else f"{b.timeout_seconds:g}s",
                b.repo,
                (b.command or "(by hand)").replace("\n", " ")[:60],
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
    click.echo(f"Added:      {stamp(branch.created_at)}")
    click.echo("Command:")
    click.echo(f"  {branch.command}" if branch.command else "  (none: jobs are claimed by hand)")


@branches.command("set")
@click.argument("name")
@click.option("--tag/--no-tag", "tag_on_success", default=None, help="Tag successful builds.")
@click.option("--push-tags/--no-push-tags", default=None, help="Push tags to the remote.")
@click.option("--retry-on-failure/--no-retry-on-failure", default=None, help="Retry failed builds.")
def set_(
    name: str,
    tag_on_success: bool | None,
    push_tags: bool | None,
    retry_on_failure: bool | None,
) -> None:
    """Change branch NAME's switches (the ones not given stay)."""
    if tag_on_success is None and push_tags is None and retry_on_failure is None:
        raise click.UsageError(
            "nothing to change: give --tag/--no-tag, --push-tags/--no-push-tags"
            " or --retry-on-failure/--no-retry-on-failure"
        )
    with get_context().client() as client:
        branch = client.update_branch(
            name,
            tag_on_success=tag_on_success,
            push_tags=push_tags,
            retry_on_failure=retry_on_failure,
        )
    click.echo(
        f"Branch {branch.name}: tag {'on' if branch.tag_on_success else 'off'}, "
        f"push tags {'on' if branch.push_tags else 'off'}, "
        f"retry {'on' if branch.retry_on_failure else 'off'}"
    )


@branches.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Forget branch NAME (its jobs stay)."""
    with get_context().client() as client:
        client.remove_branch(name)
    click.echo(f"Removed branch {name}")
