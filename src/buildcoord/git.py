"""Plain git plumbing, run as subprocesses with no prompts: shared by coordinator and agent."""

from __future__ import annotations

import os
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


def run_git(args: list[str], *, cwd: str | Path | None = None, timeout: float = GIT_TIMEOUT) -> str:
    """Run ``git args...`` and return its stdout; GitError with stderr on failure."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=git_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed (no 'git' on PATH)") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} took longer than {timeout:.0f} s") from exc
    if result.returncode != 0:
        raise GitError(f"git {args[0]} failed: {_first_complaint(result.stderr or result.stdout)}")
    return result.stdout


def _first_complaint(text: str) -> str:
    """git's own reason: its first fatal/error line, else its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else "no output"


def branch_tip(repo: str, branch: str) -> str:
    """Return the commit at the tip of branch in repo (a path or URL), via ls-remote."""
    if not repo:
        raise InvalidInput("no repository given")
    try:
        out = run_git(["ls-remote", "--heads", "--", repo, f"refs/heads/{branch}"], timeout=60)
    except GitError as exc:
        raise GitError(f"cannot read repository {repo}: {exc}") from exc
    for line in out.splitlines():
        commit, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return commit
    raise NotFound(f"branch {branch} does not exist in {repo}")
