"""Real git repositories for tests: commits made in the test, read back with plain git."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    """Run git in cwd and return its stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(repo: Path, branch: str = "main") -> str:
    """Make a commit on branch (created if new) and return its id."""
    current = git(repo, "branch", "--show-current")
    if current != branch:
        exists = git(repo, "branch", "--list", branch)
        git(repo, "checkout", "-q", *([] if exists else ["-b"]), branch)
    count = len(list(repo.glob("file-*"))) + 1
    (repo / f"file-{count}").write_text(f"{count}\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", f"change {count}")
    return git(repo, "rev-parse", "HEAD")


def make_origin(path: Path) -> Path:
    """A repository at path with one commit on main."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "T")
    commit(path)
    return path
