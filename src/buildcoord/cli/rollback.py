"""buildcoord rollback list|show|last-good|to|restore|cleanup: back to a known good build."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from buildcoord import git
from buildcoord.artifacts.manifest import Manifest, verify_manifest
from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.orders import PENDING_EXIT, report_pending, wait_for_orders
from buildcoord.cli.output import emit_json, stamp, table
from buildcoord.errors import InvalidInput
from buildcoord.models import GoodBuild


@click.group()
def rollback() -> None:
    """Successful builds, their build-success tags, and going back to one."""


def _tag_cell(good: GoodBuild) -> str:
    if good.tag is None:
        return "(not tagged)"
    return good.tag if good.tag_state == "written" else f"{good.tag} ({good.tag_state})"


@rollback.command("list")
@click.argument("branch", required=False)
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@json_option
def list_(branch: str | None, limit: int, as_json: bool) -> None:
    """Successful builds with their tags, newest first (20 unless --limit)."""
    with get_context().client() as client:
        found = client.good_builds(branch, limit=limit)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo(f"No successful builds recorded{f' for branch {branch}' if branch else ''}")
        return
    table(
        ["TAG", "BRANCH", "COMMIT", "JOB", "SERVER", "ARTIFACTS", "SUCCEEDED"],
        [
            [
                _tag_cell(g),
                g.branch,
                g.commit[:12],
                g.job_id,
                g.server,
                g.artifact_count,
                stamp(g.succeeded_at),
            ]
            for g in found
        ],
    )


def _print_build(good: GoodBuild) -> None:
    click.echo(f"Tag:       {_tag_cell(good)}")
    click.echo(f"Branch:    {good.branch}")
    click.echo(f"Commit:    {good.commit}")
    click.echo(f"Job:       {good.job_id}")
    click.echo(f"Server:    {good.server}")
    click.echo(f"Artifacts: {good.artifact_count}")
    click.echo(f"Succeeded: {stamp(good.succeeded_at)}")
    if good.tag is not None:
        click.echo(f"Pushed to the repository's remote: {'yes' if good.pushed else 'no'}")
    if good.tag_error:
        click.echo(f"Tag error: {good.tag_error}")
    if good.tag_message:
        click.echo("Annotation:")
        for line in good.tag_message.splitlines():
            click.echo(f"  {line}")


@rollback.command("show")
@click.argument("tag")
@json_option
def show(tag: str, as_json: bool) -> None:
    """One success tag: its build, commit and annotation."""
    with get_context().client() as client:
        good = client.tag(tag)
    if as_json:
        emit_json(good)
    else:
        _print_build(good)


@rollback.command("last-good")
@click.argument("branch")
@json_option
def last_good(branch: str, as_json: bool) -> None:
    """BRANCH's last known good build."""
    with get_context().client() as client:
        good = client.last_good(branch)
    if as_json:
        emit_json(good)
    else:
        _print_build(good)


@rollback.command("to")
@click.argument("tag")
@click.option(
    "--repo",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The repository to branch back in.",
)
@click.option("--checkout", is_flag=True, help="Also switch the work tree to the new branch.")
def to(tag: str, repo: Path, checkout: bool) -> None:
    """Create branch rollback-<UTC stamp> in REPO at the commit TAG records.

    The commit is read from the tag's raw annotation (its 'Commit:' line). When REPO lacks
    the tag or the commit, they are fetched from its origin first.
    """
    git.require_repository(repo)
    if git.tag_commit(repo, tag) is None and git.has_remote(repo):
        _fetch(repo, ["--no-tags", "origin", f"refs/tags/{tag}:refs/tags/{tag}"])
    message = git.tag_annotation(repo, tag)
    fields = git.annotation_fields(message)
    commit = fields.get("Commit")
    if not commit:
        raise InvalidInput(f"tag {tag} has no 'Commit:' line in its annotation")
    branch = fields.get("Branch")
    try:
        full = git.run_git(["rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=repo).strip()
    except git.GitError:
        if not (branch and git.has_remote(repo)):
            raise InvalidInput(f"commit {commit} of tag {tag} is not in {repo}") from None
        _fetch(repo, ["origin", branch])
        full = git.run_git(["rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=repo).strip()
    name = f"rollback-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    git.run_git(["branch", name, full], cwd=repo)
    click.echo(f"Rolling back to {tag}: branch {branch or '?'}, commit {full}")
    if checkout:
        git.run_git(["checkout", "--quiet", name], cwd=repo)
        click.echo(f"Switched {repo} to {name}")
    else:
        click.echo(f"Created branch {name}; switch to it with: git -C {repo} switch {name}")
    click.echo(name)


def _fetch(repo: Path, args: list[str]) -> None:
    try:
        git.run_git(["fetch", "--quiet", *args], cwd=repo)
    except git.GitError as exc:
        click.echo(f"warning: cannot fetch from origin: {exc}", err=True)


@rollback.command("restore")
@click.argument("branch")
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A new (or empty) directory to copy the artifacts into.",
)
def restore(branch: str, target: Path) -> None:
    """Copy BRANCH's last good build's artifacts to DIR and verify them against its manifest.

    The artifacts are read where the agent keeps them, so run this on that server (or where
    its work directory is shared).
    """
    with get_context().client() as client:
        good = client.last_good(branch)
        kept = client.artifact_set(good.job_id)
        files = client.manifest(good.job_id)
    if kept.removed_at is not None:
        raise InvalidInput(f"the artifacts of job {good.job_id} were removed by a cleanup")
    source = Path(kept.root)
    if not source.is_dir():
        raise InvalidInput(
            f"the artifacts of job {good.job_id} are on server {kept.server} at {source}, "
            "which is not readable here: run this command on that server"
        )
    if target.exists() and any(target.iterdir()):
        raise InvalidInput(f"{target} is not empty: restore into a new or empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        copied = staging / "tree"
        shutil.copytree(source, copied, symlinks=True)
        manifest = Manifest(
            files=files,
            created_at=good.succeeded_at,
            job=good.job_id,
            server=good.server,
            branch=good.branch,
            commit=good.commit,
        )
        failed = [check for check in verify_manifest(manifest, copied) if not check.ok]
        if failed:
            problems = ", ".join(f"{check.status} {check.path}" for check in failed[:5])
            raise InvalidInput(
                f"the copy does not match job {good.job_id}'s manifest "
                f"({len(failed)} problems: {problems})"
            )
        if target.exists():
            target.rmdir()
        os.replace(copied, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    click.echo(
        f"Restored {len(files)} artifacts of job {good.job_id} ({branch} at {good.commit[:12]}, "
        f"built on {good.server}) to {target}; all verified against its manifest"
    )


@rollback.command("cleanup")
@click.argument("branch", required=False)
@click.option("--keep", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--dry-run", is_flag=True, help="Say which tags would go; delete nothing.")
@click.option("--wait", type=click.FloatRange(0, 3600), default=60.0, show_default=True)
def cleanup(branch: str | None, keep: int, dry_run: bool, wait: float) -> None:
    """Delete all but the newest KEEP success tags of each branch (or of BRANCH), in the
    repository and its remote; the registry follows.

    Exit 0 when done, 1 when an agent failed, 2 when an agent has not reported in time.
    """
    with get_context().client() as client:
        plan = client.cleanup_tags(keep=keep, branch=branch, dry_run=dry_run)
        orders = wait_for_orders(client, plan["orders"], wait) if plan["orders"] else []
    removals: list[GoodBuild] = plan["removals"]
    if not removals:
        click.echo(f"Nothing to clean up (keeping the newest {keep} tags per branch)")
        return
    verb = "Would remove" if dry_run else "Removing"
    for good in removals:
        click.echo(f"  {verb} tag: {good.tag}")
    if not dry_run:
        deleted = sum(len((order.result or {}).get("deleted", [])) for order in orders)
        for order in orders:
            for problem in (order.result or {}).get("errors", []):
                click.echo(f"warning: {order.server}: {problem}", err=True)
        click.echo(f"Cleanup complete: removed {deleted} tags")
    if report_pending(orders):
        click.get_current_context().exit(PENDING_EXIT)
    if any(order.status == "failed" for order in orders):
        click.get_current_context().exit(1)
