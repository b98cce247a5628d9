"""Orders from the coordinator beside builds: remove old artifacts, write and delete tags.

A thread fetches the agent's pending orders when the session says there are some (the
coordinator also says so when the session opens), and polls only as a safety net: every ten
minutes while the session is open, every half minute while it is not. It carries each order
out and reports it once. Removal never touches a path outside this agent's artifacts root:
the coordinator names build directories, and each must be
``<artifacts root>/<branch dir>/<job id>`` exactly, a real directory, not a symlink.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import Any

from buildcoord import git
from buildcoord.agent.workspace import Workspace
from buildcoord.client import Client
from buildcoord.errors import BuildcoordError, Conflict
from buildcoord.models import AgentOrder

log = logging.getLogger("buildcoord.agent")

POLL_SECONDS = 30.0  # without a session: nobody tells the agent of new orders
SESSION_POLL_SECONDS = 600.0  # with one: only in case a message was lost
WAIT_SLICE_SECONDS = 1.0  # how often the wait looks whether the session opened or closed


class OrderRunner:
    """Carries out this agent's orders on a thread of its own."""

    def __init__(
        self,
        client: Client,
        server: str,
        workspace: Workspace,
        session_open: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.server = server
        self.workspace = workspace
        self.session_open = session_open or threading.Event()
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="buildcoord-orders", daemon=True)

    def start(self) -> None:
        """Start carrying out orders."""
        self.wake.set()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the order in hand."""
        self._stop.set()
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        fetched = time.monotonic()
        while not self._stop.is_set():
            # In slices: the due time follows the session (open: ten minutes, else half a
            # minute), so a session that opens after the wait began lengthens it.
            woken = self.wake.wait(WAIT_SLICE_SECONDS)
            if self._stop.is_set():
                return
            if not woken and time.monotonic() - fetched < self.poll_seconds():
                continue
            self.wake.clear()
            fetched = time.monotonic()
            try:
                self.run_pending()
            except BuildcoordError as exc:
                log.warning("cannot fetch orders: %s", exc)
            except Exception:
                log.exception("orders failed")

    def poll_seconds(self) -> float:
        """How long to wait for a wake-up before fetching anyway."""
        return SESSION_POLL_SECONDS if self.session_open.is_set() else POLL_SECONDS

    def run_pending(self) -> int:
        """Carry out every pending order; return how many were reported."""
        done = 0
        for order in self.client.pending_orders(self.server):
            if self._stop.is_set():
                break
            status, result, error = self.execute(order)
            try:
                self.client.report_order(
                    self.server, order.id, status=status, result=result, error=error
                )
                done += 1
            except Conflict:
                pass  # reported already (a retry after a lost answer)
        return done

    def execute(self, order: AgentOrder) -> tuple[str, dict[str, Any] | None, str | None]:
        """Carry out one order: (done|failed, result, error)."""
        try:
            if order.kind == "artifacts.remove":
                result = self.remove_artifacts(order.params.get("sets", []))
            elif order.kind == "tag.create":
                result = self.create_tag(order.params)
            elif order.kind == "tags.delete":
                result = self.delete_tags(order.params)
            else:
                return "failed", None, f"this agent does not know orders of kind {order.kind}"
        except (BuildcoordError, OSError, KeyError, TypeError) as exc:
            log.warning("order %d (%s) failed: %s", order.id, order.kind, exc)
            return "failed", None, str(exc) or type(exc).__name__
        log.info("order %d (%s) done: %s", order.id, order.kind, _summary(result))
        return "done", result, None

    # -- artifacts ---------------------------------------------------------------------------

    def remove_artifacts(self, sets: list[dict[str, Any]]) -> dict[str, Any]:
        """Remove build directories inside the artifacts root; report bytes freed per job."""
        removed: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for item in sets:
            job_id = item.get("job_id")
            path = item.get("path")
            if not isinstance(job_id, int) or not isinstance(path, str):
                refused.append({"job_id": job_id, "reason": "not a job id and a path"})
                continue
            problem = self._outside_root(Path(path), job_id)
            if problem:
                refused.append({"job_id": job_id, "path": path, "reason": problem})
                log.warning("refusing to remove %r: %s", path, problem)
                continue
            target = Path(path)
            if not os.path.lexists(target):
                removed.append({"job_id": job_id, "path": path, "freed_bytes": 0})
                continue
            freed = tree_bytes(target)
            shutil.rmtree(target)
            removed.append({"job_id": job_id, "path": path, "freed_bytes": freed})
        return {
            "removed": removed,
            "refused": refused,
            "freed_bytes": sum(item["freed_bytes"] for item in removed),
        }

    def _outside_root(self, path: Path, job_id: int) -> str | None:
        """Why path is not one of this agent's build directories (None when it is)."""
        root = self.workspace.artifacts_root
        if not path.is_absolute():
            return "not an absolute path"
        try:
            relative = path.relative_to(root)
        except ValueError:
            return f"outside the artifacts root {root}"
        parts = relative.parts
        if len(parts) != 2 or parts[1] != str(job_id) or ".." in parts:
            return f"not a build directory <branch>/{job_id} of the artifacts root"
        branch_dir = root / parts[0]
        for step in (root, branch_dir, path):
            try:
                mode = os.lstat(step).st_mode
            except FileNotFoundError:
                return None  # gone already: nothing to remove
            if stat.S_ISLNK(mode):
                return f"{step} is a symbolic link"
            if not stat.S_ISDIR(mode):
                return f"{step} is not a directory"
        return None

    # -- tags --------------------------------------------------------------------------------

    def create_tag(self, params: dict[str, Any]) -> dict[str, Any]:
        """Write an annotated success tag into the branch's repository (and on to its remote)."""
        tag, repo, commit = str(params["tag"]), str(params["repo"]), str(params["commit"])
        message = str(params.get("message") or f"Successful build: {params.get('job_id')}")
        mirror = self.workspace.mirror_path(repo)
        if not (mirror / "HEAD").is_file():
            raise BuildcoordError(f"no mirror of {repo} on this agent")
        with self.workspace.mirror_lock:
            git.create_annotated_tag(mirror, tag, commit, message)
            # Written into the branch's repository itself: the mirror is only a cache.
            git.run_git(["push", "--quiet", "--", repo, f"refs/tags/{tag}"], cwd=mirror)
        pushed = False
        note = None
        if params.get("push") and _local_repository(repo) and git.has_remote(repo):
            try:
                git.run_git(["push", "--quiet", "origin", f"refs/tags/{tag}"], cwd=repo)
                pushed = True
            except git.GitError as exc:
                note = f"tag written in {repo} but not pushed to its remote: {exc}"
        return {"tag": tag, "written": True, "pushed": pushed, "note": note}

    def delete_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        """Delete tags in the branch's repository, its remote and this agent's mirror."""
        repo = str(params["repo"])
        tags = [str(tag) for tag in params.get("tags", [])]
        mirror = self.workspace.mirror_path(repo)
        deleted: list[str] = []
        errors: list[str] = []
        onward = bool(params.get("push")) and _local_repository(repo) and git.has_remote(repo)
        for tag in tags:
            try:
                if _local_repository(repo):
                    if git.tag_commit(repo, tag) is not None:
                        git.run_git(["tag", "--delete", tag], cwd=repo)
                else:
                    git.run_git(["push", "--quiet", "--", repo, f":refs/tags/{tag}"])
                if onward:
                    try:
                        git.run_git(["push", "--quiet", "origin", f":refs/tags/{tag}"], cwd=repo)
                    except git.GitError as exc:
                        errors.append(f"{tag}: not deleted on the remote: {exc}")
                with self.workspace.mirror_lock:
                    if (mirror / "HEAD").is_file() and git.tag_commit(mirror, tag) is not None:
                        git.run_git(["tag", "--delete", tag], cwd=mirror)
                deleted.append(tag)
            except git.GitError as exc:
                errors.append(f"{tag}: {exc}")
        return {"deleted": deleted, "errors": errors}


def _local_repository(repo: str) -> bool:
    return "://" not in repo and git.is_repository(repo)


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under path, symlinks not followed."""
    total = 0
    for directory, dirs, files in os.walk(path, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
            try:
                info = os.lstat(os.path.join(directory, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def _summary(result: dict[str, Any]) -> str:
    if "freed_bytes" in result:
        return f"{len(result.get('removed', []))} removed, {result['freed_bytes']} bytes freed"
    if "deleted" in result:
        return f"{len(result['deleted'])} tags deleted"
    return f"tag {result.get('tag')} written"
