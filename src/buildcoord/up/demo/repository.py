"""Create the demo git repository from the project files shipped in the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from buildcoord.errors import BuildcoordError

MAIN = "main"
FEATURE = "feature/faster"
BUILD_COMMAND = "./build.sh"
EXECUTABLES = frozenset({"build.sh", "src/greet.sh", "tests/test_greet.sh"})

# Fixed identity and dates make the commits, and so their ids, the same on every machine.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "buildcoord demo",
    "GIT_AUTHOR_EMAIL": "demo@buildcoord.invalid",
    "GIT_COMMITTER_NAME": "buildcoord demo",
    "GIT_COMMITTER_EMAIL": "demo@buildcoord.invalid",
}
_COMMITS = (
    (MAIN, "project", "greet 1.0.0: a tiny program and its reproducible build", 1704110400),
    (FEATURE, "feature", "greet: print with printf only (faster)", 1704196800),
)


class DemoError(BuildcoordError):
    """The demo repository could not be created or is not what it should be."""


@dataclass(frozen=True, slots=True)
class DemoRepository:
    """The demo repository and the commit at the tip of each of its branches."""

    path: Path
    commits: dict[str, str]


def _git(args: list[str], cwd: Path, *, when: int | None = None) -> str:
    """Run git ignoring the user's and system's git configuration (hooks, signing, ...)."""
    env = dict(os.environ)
    env.update(_IDENTITY)
    env.update(
        {
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise DemoError("the demo needs git, and there is no 'git' on PATH") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise DemoError(f"git {args[0]} failed in {cwd}: {detail}")
    return result.stdout.strip()


def _copy_tree(source: Traversable, target: Path, prefix: str = "") -> list[str]:
    """Copy shipped files into target; return their relative paths."""
    copied: list[str] = []
    for entry in sorted(source.iterdir(), key=lambda item: item.name):
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            (target / entry.name).mkdir(exist_ok=True)
            copied += _copy_tree(entry, target / entry.name, relative + "/")
        elif entry.is_file() and entry.name != "__pycache__":
            destination = target / entry.name
            destination.write_bytes(entry.read_bytes())
            # Set the mode here: a wheel or a checkout may not have kept the shipped one.
            destination.chmod(0o755 if relative in EXECUTABLES else 0o644)
            copied.append(relative)
    return copied


def _commit(work: Path, files: list[str], message: str, when: int) -> None:
    _git(["add", "--", *files], work)
    executables = sorted(EXECUTABLES & set(files))
    if executables:
        _git(["update-index", "--chmod=+x", "--", *executables], work)
    _git(["commit", "--quiet", "--no-verify", "-m", message], work, when=when)


def _build(work: Path) -> None:
    """Make the repository in work: main from project/, feature/faster on top of it."""
    shipped = resources.files("buildcoord.up.demo")
    _git(["init", "--quiet", "--initial-branch", MAIN], work)
    for branch, folder, message, when in _COMMITS:
        if branch != MAIN:
            _git(["checkout", "--quiet", "-b", branch], work)
        _commit(work, _copy_tree(shipped / folder, work), message, when)
    _git(["checkout", "--quiet", MAIN], work)


def read_demo_repository(path: Path) -> DemoRepository:
    """Return the demo repository at path with its branch tips; DemoError if it is not one."""
    commits: dict[str, str] = {}
    for branch, *_ in _COMMITS:
        try:
            commits[branch] = _git(["rev-parse", "--verify", f"refs/heads/{branch}"], path)
        except DemoError as exc:
            raise DemoError(
                f"{path} is not the demo repository (no branch {branch}); remove it to "
                "have it created again"
            ) from exc
    return DemoRepository(path=path, commits=commits)


def ensure_demo_repository(path: Path) -> DemoRepository:
    """Create the demo repository at path unless it exists; return it with its branch tips."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Built aside and renamed into place, so an interrupted run leaves no half repository.
        work = Path(tempfile.mkdtemp(prefix=".repo-", dir=path.parent))
        try:
            _build(work)
            work.rename(path)
        finally:
            if work.exists():
                shutil.rmtree(work)
    return read_demo_repository(path)
