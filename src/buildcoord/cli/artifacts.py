"""buildcoord artifacts manifest|verify|export: local manifests.

The coordinator-side commands (list, pin, unpin, cleanup) join this group elsewhere; these
work on local files only and need no coordinator.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import click

from buildcoord.artifacts.hashing import Progress
from buildcoord.artifacts.manifest import (
    PRESETS,
    Manifest,
    create_manifest,
    load_manifest,
    select_patterns,
    verify_manifest,
)
from buildcoord.errors import InvalidInput
from buildcoord.git import GitError, run_git

# A server name used as a directory of the export repository: one plain path component.
_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@click.group("artifacts")
def artifacts() -> None:
    """Build artifacts: manifests, verification and export (local); the builds kept on the
    agents, pins and cleanup (coordinator)."""


def write_atomically(path: Path, text: str) -> None:
    """Write text to path through a temp file in the same directory and a rename, so that a
    reader (or a crash) never sees a half-written file."""
    directory = path.parent
    if not directory.is_dir():
        raise InvalidInput(f"cannot write {path}: directory {directory} does not exist")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[Progress], None] | None]:
    """A progress callback drawing a bar on stderr, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=1, label=label, file=sys.stderr, show_pos=False) as bar:
        shown = 0

        def update(progress: Progress) -> None:
            nonlocal shown
            bar.length = max(progress.bytes_total, 1)
            bar.update(progress.bytes_done - shown)
            shown = progress.bytes_done

        yield update


@artifacts.command("manifest")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--job", type=int, help="The job that built these artifacts.")
@click.option("--server", help="The build server that built them.")
@click.option("--branch", help="The branch built.")
@click.option("--commit", help="The commit built.")
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    metavar="GLOB",
    help="Only files matching GLOB (by name at any depth; with '/', by relative path). Repeatable.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    help="A named selection: packages = " + " ".join(PRESETS["packages"]) + ".",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the manifest here (default: stdout).",
)
def manifest(
    directory: Path,
    job: int | None,
    server: str | None,
    branch: str | None,
    commit: str | None,
    patterns: tuple[str, ...],
    preset: str | None,
    output: Path | None,
) -> None:
    """Hash every file under DIRECTORY: size, MD5, SHA-256, SHA-512, as deterministic JSON."""
    selected = select_patterns(patterns, preset)
    with progress_bar(f"hashing {directory}") as progress:
        document = create_manifest(
            directory,
            job=job,
            server=server,
            branch=branch,
            commit=commit,
            patterns=selected,
            progress=progress,
            # Writing the manifest into the tree it describes must not list it next time.
            exclude=[output] if output is not None else [],
        )
    if output is None:
        click.echo(document.to_json(), nl=False)
        return
    write_atomically(output, document.to_json())
    click.echo(f"{document.artifact_count} files, {document.total_size} bytes: {output}", err=True)


@artifacts.command("verify")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the files are (default: the manifest's directory).",
)
def verify(manifest_path: Path, root: Path | None) -> None:
    """Check files against a manifest: OK, MISSING, MISMATCH or EXTRA; exit 1 on any failure."""
    document = load_manifest(manifest_path)
    root = root if root is not None else manifest_path.parent
    with progress_bar(f"verifying {root}") as progress:
        checks = verify_manifest(document, root, ignore=[manifest_path], progress=progress)
    for check in checks:
        mark = "[OK]" if check.ok else "[X]"
        detail = f" ({check.detail})" if check.detail and not check.ok else ""
        click.echo(f"{mark} {check.status}: {check.path}{detail}")
    verified = sum(1 for check in checks if check.ok)
    failed = len(checks) - verified
    click.echo(f"{verified} of {document.artifact_count} verified, {failed} failed")
    if failed:
        sys.exit(1)


@artifacts.command("export")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.option(
    "--sha256sums",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a file `sha256sum -c` accepts (run it from the manifest's root).",
)
@click.option(
    "--git",
    "repo",
    type=click.Path(path_type=Path, file_okay=False),
    help="Commit the manifest to this git repository as <server>/artifacts/<job>_manifest.json.",
)
@click.option("--server", help="The server directory in --git (default: the manifest's server).")
def export(
    manifest_path: Path, sha256sums: Path | None, repo: Path | None, server: str | None
) -> None:
    """Export a manifest: as a sha256sum file, or committed to a git repository."""
    if (sha256sums is None) == (repo is None):
        raise click.UsageError("give exactly one of --sha256sums FILE or --git REPO")
    document = load_manifest(manifest_path)
    if sha256sums is not None:
        text, skipped = sha256sums_text(document)
        write_atomically(sha256sums, text)
        note = f" ({skipped} symlinks left out: sha256sum would follow them)" if skipped else ""
        click.echo(f"{document.artifact_count - skipped} checksums: {sha256sums}{note}", err=True)
        return
    assert repo is not None
    click.echo(export_to_git(document, manifest_path, repo, server))


def sha256sums_text(document: Manifest) -> tuple[str, int]:
    """GNU sha256sum lines for the regular files, and how many symlinks were left out.

    A name holding a backslash, a newline or a carriage return is written the way
    sha256sum itself writes it: the line starts with a backslash and those characters are
    escaped (``\\\\``, ``\\n``, ``\\r``).
    """
    lines: list[str] = []
    skipped = 0
    for item in document.files:
        if item.kind != "file":
            skipped += 1
            continue
        name = item.path
        prefix = ""
        if any(char in name for char in "\\\n\r"):
            prefix = "\\"
            name = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        lines.append(f"{prefix}{item.sha256}  {name}\n")
    return "".join(lines), skipped


def export_to_git(document: Manifest, source: Path, repo: Path, server: str | None) -> str:
    """Commit the manifest as <server>/artifacts/<job>_manifest.json; return what was done."""
    server = server or document.server
    if not server:
        raise InvalidInput("the manifest names no server: pass --server NAME")
    if not _SERVER_NAME.fullmatch(server):
        raise InvalidInput(f"server name {server!r} cannot be a directory name")
    if document.job is None:
        raise InvalidInput("the manifest names no job: create it with --job ID")
    if not repo.is_dir():
        raise InvalidInput(f"{repo} is not a directory")
    try:
        top = run_git(["rev-parse", "--show-toplevel"], cwd=repo).strip()
    except GitError as exc:
        raise InvalidInput(f"{repo} is not a git repository") from exc
    if Path(top).resolve() != repo.resolve():
        raise InvalidInput(f"{repo} is inside the git repository {top}: give its top level")
    relative = f"{server}/artifacts/{document.job}_manifest.json"
    target = repo / relative
    before = target.read_bytes() if target.exists() else None
    text = source.read_text(encoding="utf-8")
    if before == text.encode("utf-8") and not _changed(repo, relative):
        return f"unchanged: {relative} already holds this manifest"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, text)
    message = f"Export artifact manifest for job {document.job} [{server}]"
    try:
        run_git(["add", "--", relative], cwd=repo)
        run_git(["commit", "-q", "-m", message, "--", relative], cwd=repo)
    except GitError:
        # Leave the repository as it was: nothing staged, the old file (or none) in place.
        _restore(repo, relative, target, before)
        raise
    commit = run_git(["rev-parse", "HEAD"], cwd=repo).strip()
    return f"committed {relative} in {repo} ({commit[:12]})"


def _changed(repo: Path, relative: str) -> bool:
    """Whether the path differs from HEAD (untracked or modified)."""
    return bool(run_git(["status", "--porcelain", "--", relative], cwd=repo).strip())


def _restore(repo: Path, relative: str, target: Path, before: bytes | None) -> None:
    with suppress(GitError):  # no HEAD yet: the index entry goes with rm below
        run_git(["reset", "-q", "--", relative], cwd=repo)
    if before is None:
        target.unlink(missing_ok=True)
        with suppress(GitError):
            run_git(["rm", "-q", "--cached", "--ignore-unmatch", "--", relative], cwd=repo)
    else:
        target.write_bytes(before)


# The coordinator-side commands: builds' artifacts kept on the agents.
from buildcoord.cli.artifact_store import cleanup, list_sets, pin, unpin  # noqa: E402

for _command in (list_sets, pin, unpin, cleanup):
    artifacts.add_command(_command)
