"""buildcoord legacy import|export: move a seed installation in, keep its readers fed."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import TypeAdapter

from buildcoord.cli.context import get_context, json_option
from buildcoord.errors import BuildcoordError, Unavailable
from buildcoord.legacy import layout
from buildcoord.models import LegacyImport

KIND_NAMES = {
    "server": "servers",
    "job": "jobs",
    "lock": "locks",
    "message": "messages",
    "log": "build logs",
    "manifest": "manifests",
    "sample": "trend samples",
}
GIT_TIMEOUT = 120.0


@click.group("legacy")
def legacy() -> None:
    """The seed's git repository of JSON files: import it, export to it (docs/migrating.md)."""


@legacy.command("import")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would be imported; store nothing.")
@json_option
def import_(directory: Path, dry_run: bool, as_json: bool) -> None:
    """Import a checkout of the seed's repository: servers, jobs, locks, messages (and their
    archives), build logs, manifests and the health history, in one transaction. Run it again
    to pick up what is new: nothing is imported twice."""
    try:
        files = layout.collect(directory)
    except layout.NotASeedLayout as error:
        raise click.ClickException(f"{error}; nothing imported") from None
    except (OSError, ValueError) as error:
        raise click.ClickException(f"cannot read {directory}: {error}; nothing imported") from None
    size = sum(len(text.encode()) for text in files.values())
    if not as_json:
        click.echo(
            f"Read {len(files)} seed files ({size / 1024**2:.1f} MiB) from {directory}; "
            f"{'checking' if dry_run else 'importing'}...",
            err=True,
        )
    with get_context().client() as client:
        outcome = client.import_legacy(files, dry_run=dry_run)
    if as_json:
        data = TypeAdapter(LegacyImport).dump_python(outcome, mode="json")
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    _report(outcome, directory)


def _report(outcome: LegacyImport, directory: Path) -> None:
    verb = "Would import" if outcome.dry_run else "Imported"
    click.echo(f"{verb} from {directory} ({outcome.files} files):")
    for kind, name in KIND_NAMES.items():
        added, updated, kept = (
            outcome.added.get(kind, 0),
            outcome.updated.get(kind, 0),
            outcome.unchanged.get(kind, 0),
        )
        extra = f", {updated} updated" if updated else ""
        click.echo(f"  {name:14} {added:>6} added{extra}, {kept} imported before")
    skipped = [note for note in outcome.notes if note.skipped]
    changed = [note for note in outcome.notes if not note.skipped]
    for title, notes in (("Skipped", skipped), ("Imported with a change", changed)):
        if notes:
            click.echo(f"{title} ({len(notes)}):")
            for note in notes:
                where = note.path if note.entry is None else f"{note.path} {note.entry}"
                click.echo(f"  {where}: {note.reason}")
    if outcome.dry_run:
        click.echo("Dry run: nothing was stored.")
    if outcome.tokens:
        click.echo("Agent tokens of the servers added (shown once; give each to its agent):")
        for name, secret in sorted(outcome.tokens.items()):
            click.echo(f"  {name}  {secret}")


@legacy.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--git", "use_git", is_flag=True, help="Commit each export that changed a file, and push."
)
@click.option(
    "--every",
    type=click.FloatRange(min=0.01, max=24 * 60),
    help="Export again every MINUTES until stopped (Ctrl-C).",
    metavar="MINUTES",
)
def export(directory: Path, use_git: bool, every: float | None) -> None:
    """Write the seed's files (coordination/jobs.json, locks.json, messages.json,
    buildN/status.json and heartbeat.json, shared/health_dashboard.json) from the coordinator's
    state, so that the seed's page and scripts keep working while you switch."""
    directory.mkdir(parents=True, exist_ok=True)
    if use_git:
        _git(directory, "rev-parse", "--is-inside-work-tree")
    if every is None:
        _export_once(directory, use_git)
        return
    try:
        while True:
            try:
                _export_once(directory, use_git)
            except (Unavailable, GitFailed) as error:
                click.echo(f"error: {error}; trying again in {every:g} min", err=True)
            time.sleep(every * 60)
    except KeyboardInterrupt:
        click.echo("Stopped.")


def _export_once(directory: Path, use_git: bool) -> None:
    with get_context().client() as client:
        documents = client.export_legacy()
    if use_git and _has_upstream(directory):
        # The seed's own writers may still push beside us: start from what is there.
        _git(directory, "pull", "--rebase", "--autostash", "--quiet")
    changed = write_documents(directory, documents)
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"[{at}] exported {len(documents)} files to {directory}, {len(changed)} changed")
    if use_git and changed:
        _commit_and_push(directory, sorted(documents), at)


def write_documents(directory: Path, documents: Mapping[str, Any]) -> list[str]:
    """Write each document (as jq writes: 2-space indent, raw UTF-8) to a temporary name and
    rename it into place; only those whose text changed. Returns their paths."""
    changed = []
    root = directory.resolve()
    for relative, document in sorted(documents.items()):
        target = (directory / relative).resolve()
        if not target.is_relative_to(root) or relative != Path(relative).as_posix():
            raise BuildcoordError(f"the coordinator sent a path outside {directory}: {relative!r}")
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if target.is_file() and target.read_text(encoding="utf-8", errors="replace") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        changed.append(relative)
    return changed


class GitFailed(BuildcoordError):
    """A git command of an export failed."""


def _git(directory: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    for key, value in (("user.name", "buildcoord"), ("user.email", "buildcoord@localhost")):
        found = subprocess.run(
            ["git", "-C", str(directory), "config", key],
            capture_output=True,
            text=True,
            check=False,
            timeout=GIT_TIMEOUT,
        )
        if not found.stdout.strip():
            role = key.split(".")[1].upper()
            environment.setdefault(f"GIT_AUTHOR_{role}", value)
            environment.setdefault(f"GIT_COMMITTER_{role}", value)
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
            timeout=GIT_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitFailed(f"git {args[0]} failed: {error}") from None
    if check and done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        said = [line for line in lines if not line.startswith("hint:")][:3]
        raise GitFailed(
            f"git {args[0]} in {directory} failed: "
            + ("; ".join(said) if said else f"exit status {done.returncode}")
        )
    return done


def _has_upstream(directory: Path) -> bool:
    found = _git(directory, "rev-parse", "--abbrev-ref", "@{upstream}", check=False)
    return found.returncode == 0


def _commit_and_push(directory: Path, paths: list[str], at: str) -> None:
    _git(directory, "add", "--", *paths)
    if _git(directory, "diff", "--cached", "--quiet", "--", *paths, check=False).returncode == 0:
        return
    _git(directory, "commit", "--quiet", "-m", f"buildcoord export [{at}]", "--", *paths)
    click.echo(f"  committed: buildcoord export [{at}]")
    if not _has_upstream(directory):
        click.echo("  no upstream branch: not pushed (git push -u once to set one)")
        return
    _git(directory, "push", "--quiet")
    click.echo("  pushed")
