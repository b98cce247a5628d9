"""The agent prunes worktrees of branches not built lately or no longer set up."""

from __future__ import annotations

import os
import time
from pathlib import Path

from buildcoord.agent.workspace import Workspace
from gitrepos import commit, git, make_origin


def built_workspace(tmp_path: Path) -> tuple[Workspace, Path]:
    """A workspace with worktrees of main and feature/x checked out from a real repository."""
    origin = make_origin(tmp_path / "origin")
    feature = commit(origin, "feature/x")
    workspace = Workspace(tmp_path / "work")
    workspace.prepare(str(origin), "main", git(origin, "rev-parse", "main"))
    workspace.prepare(str(origin), "feature/x", feature)
    return workspace, origin


def test_a_worktree_not_built_within_the_kept_days_is_removed_and_forgotten(
    tmp_path: Path,
) -> None:
    workspace, _origin = built_workspace(tmp_path)
    old = time.time() - 20 * 86400
    os.utime(workspace.worktree_path("feature/x"), (old, old))
    removed = workspace.prune_worktrees(keep_days=14)
    assert removed == [workspace.worktree_path("feature/x")]
    assert workspace.worktree_path("main").is_dir()
    [mirror] = (workspace.root / "mirrors").glob("*.git")
    listed = git(mirror, "worktree", "list")
    assert "feature_x" not in listed
    assert "main" in listed


def test_a_worktree_is_reused_across_builds_and_each_build_renews_it(tmp_path: Path) -> None:
    workspace, origin = built_workspace(tmp_path)
    path = workspace.worktree_path("main")
    old = time.time() - 20 * 86400
    os.utime(path, (old, old))
    marker = path / ".git"
    before = marker.read_text()
    workspace.prepare(str(origin), "main", commit(origin, "main"))
    assert marker.read_text() == before  # the same worktree, checked out again
    assert workspace.prune_worktrees(keep_days=14) == []


def test_worktrees_of_branches_no_longer_set_up_are_removed(tmp_path: Path) -> None:
    workspace, _ = built_workspace(tmp_path)
    removed = workspace.prune_worktrees(keep_days=14, branches={"main"})
    assert removed == [workspace.worktree_path("feature/x")]


def test_pruning_never_follows_a_link_out_of_the_worktrees_directory(tmp_path: Path) -> None:
    workspace, _ = built_workspace(tmp_path)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    link = workspace.root / "worktrees" / "link"
    link.symlink_to(outside)
    workspace.prune_worktrees(keep_days=0, branches=set())
    assert (outside / "keep.txt").read_text() == "keep\n"
    assert not link.exists()
    assert list((workspace.root / "worktrees").iterdir()) == []
    assert (workspace.root / "mirrors").is_dir()
