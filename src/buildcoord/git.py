"""Plain git plumbing, run as subprocesses with no prompts: shared by coordinator and agent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from buildcoord.errors import InvalidInput, NotFound

GIT_TIMEOUT = 120.0


class GitError(InvalidInput):
    """A git command failed; the message holds git's own words."""


def git_environment() -> dict[str, str]:
    """The environment for git: never prompt for credentials, never open an editor."""
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "LC_ALL": "C"})
    return env


def run_git(
    args: list[str],
    *,
    cwd: str | Path | None = None,
    timeout: float = GIT_TIMEOUT,
    stdin: str | None = None,
) -> str:
    """Run ``git args...`` and return its stdout; GitError with stderr on failure.

    git runs in a process group of its own, so that a timeout kills what it started too (the
    ssh or https helper of a fetch or ls-remote), not git alone.
    """
    try:
        process = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=git_environment(),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed (no 'git' on PATH)") from exc
    with process:
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except BaseException as exc:
            _kill_group(process)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise GitError(f"git {args[0]} took longer than {timeout:.0f} s") from exc
            raise
    if process.returncode != 0:
        raise GitError(f"git {args[0]} failed: {_first_complaint(stderr or stdout)}")
    return stdout


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Kill git and every process in its group, and reap git."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _first_complaint(text: str) -> str:
    """git's own reason: its first fatal/error line, else its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else "no output"


def branch_tip(repo: str, branch: str, *, timeout: float = 60.0) -> str:
    """Return the commit at the tip of branch in repo (a path or URL), via ls-remote."""
    tip = branch_tips(repo, [branch], timeout=timeout).get(branch)
    if tip is None:
        raise NotFound(f"branch {branch} does not exist in {repo}")
    return tip


def branch_tips(repo: str, names: list[str], *, timeout: float = 60.0) -> dict[str, str]:
    """The tips of the named branches that exist in repo, read with one ls-remote call."""
    if not repo:
        raise InvalidInput("no repository given")
    refs = [f"refs/heads/{name}" for name in names]
    try:
        out = run_git(["ls-remote", "--heads", "--", repo, *refs], timeout=timeout)
    except GitError as exc:
        raise GitError(f"cannot read repository {repo}: {exc}") from exc
    wanted = set(refs)
    tips: dict[str, str] = {}
    for line in out.splitlines():
        commit, _, ref = line.partition("\t")
        if ref in wanted:
            tips[ref.removeprefix("refs/heads/")] = commit
    return tips


# -- tags (rollback) --------------------------------------------------------------------------

TAGGER = ["-c", "user.name=buildcoord", "-c", "user.email=buildcoord@localhost"]


def is_repository(path: str | Path) -> bool:
    """Whether path is inside a git repository (bare or with a work tree)."""
    if not Path(path).is_dir():
        return False
    try:
        run_git(["rev-parse", "--git-dir"], cwd=path)
    except GitError:
        return False
    return True


def require_repository(path: str | Path) -> Path:
    """The path, or InvalidInput naming why it is not a git repository."""
    where = Path(path)
    if not where.exists():
        raise InvalidInput(f"repository {where} does not exist")
    if not is_repository(where):
        raise InvalidInput(f"{where} is not a git repository")
    return where


def has_remote(path: str | Path, remote: str = "origin") -> bool:
    """Whether the local repository at path has the named remote."""
    try:
        names = run_git(["remote"], cwd=path).split()
    except GitError:
        return False
    return remote in names


def tag_commit(repo: str | Path, tag: str) -> str | None:
    """The commit a tag points at, or None when the tag does not exist."""
    try:
        out = run_git(["rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}"], cwd=repo)
    except GitError:
        return None
    return out.strip() or None


def create_annotated_tag(repo: str | Path, tag: str, commit: str, message: str) -> bool:
    """Create an annotated tag at commit; False when it already exists there (idempotent)."""
    existing = tag_commit(repo, tag)
    if existing is not None:
        full = run_git(["rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=repo).strip()
        if existing != full:
            raise GitError(f"tag {tag} already exists at another commit ({existing[:12]})")
        return False
    run_git([*TAGGER, "tag", "--annotate", "--file=-", tag, commit], cwd=repo, stdin=message)
    return True


def tag_annotation(repo: str | Path, tag: str) -> str:
    """The raw annotation (message) of an annotated tag: NotFound if there is no such tag."""
    try:
        kind = run_git(["cat-file", "-t", f"refs/tags/{tag}"], cwd=repo).strip()
    except GitError as exc:
        raise NotFound(f"tag {tag} does not exist in {repo}") from exc
    if kind != "tag":
        raise InvalidInput(f"tag {tag} in {repo} is a lightweight tag: it has no annotation")
    raw = run_git(["cat-file", "tag", f"refs/tags/{tag}"], cwd=repo)
    _, _, message = raw.partition("\n\n")
    return message


def annotation_fields(message: str) -> dict[str, str]:
    """``Key: value`` lines of an annotation, read at the start of each line."""
    fields: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key == key.lstrip():
            fields.setdefault(key.strip(), value.strip())
    return fields
