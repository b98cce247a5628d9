"""The agent's working directory: git mirrors, one worktree per branch, artifact directories.

Layout under WORKDIR::

    mirrors/<name>-<hash>.git     one bare mirror per repository (heads and tags fetched)
    worktrees/<branch, / -> _>    one worktree per branch, detached at the job's commit
    artifacts/<branch>/<job id>/  $BUILDCOORD_ARTIFACTS_DIR of each build, created empty

A mirror is fetched before each build, so a branch's worktree is only re-checked-out, never
cloned again. When the repository cannot be reached but the mirror already has the commit
and the branch, the build goes on from the mirror (with a warning in the job's log): a
flaky git server should not fail builds of commits already here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from buildcoord.errors import BuildcoordError, InvalidInput
from buildcoord.git import GitError, run_git

FETCH_TIMEOUT = 600.0


class WorkspaceError(BuildcoordError):
    """The job's source cannot be checked out: its message is the job's failure reason."""


@dataclass(frozen=True, slots=True)
class Checkout:
    """A worktree ready to build: where it is, the full commit id, the commit's time."""

    path: Path
    commit: str
    commit_time: int
    warnings: list[str] = field(default_factory=list)


def safe_name(text: str) -> str:
    """A file-name-safe form of a branch name: '/' becomes '_', oddities become '-'."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", text.replace("/", "_")).lstrip(".") or "_"


class Workspace:
    """One agent's working directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._lock_file: IO[str] | None = None
        # Fetches (which prune tags) and tag writes must not interleave in one mirror.
        self.mirror_lock = threading.Lock()

    def lock(self) -> None:
        """Take the directory for this agent; refuse if another agent process has it.

        Two agents in one directory would check out different commits into the same
        worktree under each other's builds.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / ".agent.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise InvalidInput(f"work directory {self.root} is in use by another agent") from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def unlock(self) -> None:
        """Let another agent use the directory."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def mirror_path(self, repo: str) -> Path:
        """Where the mirror of repo lives: a readable name plus a hash of the exact URL."""
        tail = repo.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        tail = re.sub(r"[^A-Za-z0-9._-]", "_", tail.removesuffix(".git"))[:40] or "repo"
        digest = hashlib.sha256(repo.encode()).hexdigest()[:12]
        return self.root / "mirrors" / f"{tail}-{digest}.git"

    def worktree_path(self, branch: str) -> Path:
        """Where the branch's worktree lives."""
        return self.root / "worktrees" / safe_name(branch)

    @property
    def artifacts_root(self) -> Path:
        """The directory holding every build's artifacts (nothing outside it is removed)."""
        return self.root / "artifacts"

    def artifacts_path(self, branch: str, job_id: int) -> Path:
        """Where the build's artifacts are kept."""
        return self.artifacts_root / safe_name(branch) / str(job_id)

    def artifacts_dir(self, branch: str, job_id: int) -> Path:
        """Create the build's artifact directory, empty (a retry on this agent starts clean)."""
        path = self.artifacts_path(branch, job_id)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def prepare(self, repo: str, branch: str, commit: str) -> Checkout:
        """Fetch repo and check branch's worktree out at commit; WorkspaceError if impossible."""
        if repo.startswith("-"):
            raise WorkspaceError(f"invalid repository {repo!r}")
        with self.mirror_lock:
            return self._prepare(repo, branch, commit)

    def _prepare(self, repo: str, branch: str, commit: str) -> Checkout:
        mirror = self.mirror_path(repo)
        warnings: list[str] = []
        self._ensure_mirror(mirror)
        try:
            self._fetch(mirror, repo)
        except GitError as exc:
            if not (self._has_commit(mirror, commit) and self._has_branch(mirror, branch)):
                raise WorkspaceError(f"cannot fetch repository {repo}: {exc}") from exc
            warnings.append(f"cannot fetch repository {repo} ({exc}); building from the mirror")
        if not self._has_branch(mirror, branch):
            raise WorkspaceError(f"branch {branch} does not exist in repository {repo}")
        full = self._has_commit(mirror, commit)
        if full is None:
            raise WorkspaceError(f"commit {commit} is not in repository {repo}")
        path = self._checkout(mirror, branch, full)
        committed = int(run_git(["show", "-s", "--format=%ct", full], cwd=mirror).strip())
        return Checkout(path=path, commit=full, commit_time=committed, warnings=warnings)

    # -- mirrors -----------------------------------------------------------------------------

    def _ensure_mirror(self, mirror: Path) -> None:
        if (mirror / "HEAD").is_file():
            return
        mirror.parent.mkdir(parents=True, exist_ok=True)
        # init is idempotent and fetch is incremental, so a crash half-way leaves nothing
        # that the next build cannot finish (a half-done clone would be a broken mirror).
        run_git(["init", "--quiet", "--bare", str(mirror)])

    def _fetch(self, mirror: Path, repo: str) -> None:
        run_git(
            [
                "fetch",
                "--quiet",
                "--prune",
                "--no-tags",
                "--",
                repo,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ],
            cwd=mirror,
            timeout=FETCH_TIMEOUT,
        )

    def _has_branch(self, mirror: Path, branch: str) -> bool:
        try:
            run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], cwd=mirror)
        except GitError:
            return False
        return True

    def _has_commit(self, mirror: Path, commit: str) -> str | None:
        """The full id of commit if the mirror has it."""
        try:
            out = run_git(["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=mirror)
        except GitError:
            return None
        return out.strip() or None

    # -- worktrees ---------------------------------------------------------------------------

    def _checkout(self, mirror: Path, branch: str, commit: str) -> Path:
        path = self.worktree_path(branch)
        if self._belongs_to(path, mirror):
            try:
                self._reset(path, commit)
                os.utime(path)  # when the branch was last built: see prune_worktrees
                return path
            except GitError:
                pass  # a damaged worktree: make it again below
        if path.exists() or path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        run_git(["worktree", "prune"], cwd=mirror)
        run_git(
            ["worktree", "add", "--quiet", "--force", "--detach", str(path), commit], cwd=mirror
        )
        return path

    def prune_worktrees(
        self, *, keep_days: float, branches: set[str] | None = None, now: float | None = None
    ) -> list[Path]:
        """Remove stale worktrees; return them.

        A worktree goes when its branch was not built within keep_days (the directory's
        modification time, touched at each checkout) or, when ``branches`` is given, when
        no set-up branch maps to it. Then ``git worktree prune`` forgets them in every
        mirror. Only entries directly under WORKDIR/worktrees are removed, and symbolic
        links there are unlinked, never followed.
        """
        root = self.root / "worktrees"
        cutoff = (time.time() if now is None else now) - keep_days * 86400.0
        keep = None if branches is None else {safe_name(name) for name in branches}
        removed: list[Path] = []
        with self.mirror_lock:
            if root.is_dir() and not root.is_symlink():
                for path in sorted(root.iterdir()):
                    if path.is_symlink() or not path.is_dir():
                        stale = True
                    else:
                        unknown = keep is not None and path.name not in keep
                        stale = unknown or path.stat().st_mtime < cutoff
                    if not stale:
                        continue
                    if path.is_symlink() or not path.is_dir():
                        path.unlink(missing_ok=True)
                    else:
                        shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            for mirror in sorted((self.root / "mirrors").glob("*.git")):
                with contextlib.suppress(GitError):
                    run_git(["worktree", "prune"], cwd=mirror)
        return removed

    def _reset(self, path: Path, commit: str) -> None:
        run_git(["checkout", "--quiet", "--force", "--detach", commit], cwd=path)
        # Untracked files go, ignored ones (build caches) stay: that is what reusing a
        # worktree buys; the build's outputs go to the artifacts directory anyway.
        run_git(["clean", "-ffdq"], cwd=path)

    def _belongs_to(self, path: Path, mirror: Path) -> bool:
        """Whether path is a live worktree of this mirror (a branch may move repositories)."""
        try:
            text = (path / ".git").read_text()
        except OSError:
            return False
        gitdir = Path(text.removeprefix("gitdir:").strip())
        return gitdir.parent.parent == mirror and gitdir.is_dir()
