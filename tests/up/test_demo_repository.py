"""The demo repository: its branches, its files' modes, and a build that reproduces bytes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from buildcoord.up.demo.repository import (
    FEATURE,
    MAIN,
    DemoError,
    ensure_demo_repository,
)

EPOCH = "1704110400"


def git(repo: Path, *args: str) -> str:
    """Run git in repo and return its output."""
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def test_the_demo_repository_has_main_and_a_feature_branch_one_commit_ahead(
    tmp_path: Path,
) -> None:
    demo = ensure_demo_repository(tmp_path / "repo")
    assert set(demo.commits) == {MAIN, FEATURE}
    assert git(demo.path, "rev-parse", MAIN) == demo.commits[MAIN]
    assert git(demo.path, "rev-parse", f"{FEATURE}~1") == demo.commits[MAIN]
    assert git(demo.path, "status", "--porcelain") == ""


def test_build_sh_is_executable_in_git_and_on_disk(tmp_path: Path) -> None:
    demo = ensure_demo_repository(tmp_path / "repo")
    modes = {}
    for line in git(demo.path, "ls-files", "--stage").splitlines():
        info, path = line.split("\t")
        modes[path] = info.split()[0]
    assert modes["build.sh"] == "100755"
    assert modes["VERSION"] == "100644"
    assert os.access(demo.path / "build.sh", os.X_OK)


def test_the_demo_commits_are_the_same_wherever_the_repository_is_made(tmp_path: Path) -> None:
    first = ensure_demo_repository(tmp_path / "one" / "repo")
    second = ensure_demo_repository(tmp_path / "two" / "repo")
    assert first.commits == second.commits


def test_an_existing_demo_repository_is_reused_not_made_again(tmp_path: Path) -> None:
    demo = ensure_demo_repository(tmp_path / "repo")
    marker = demo.path / "untracked-marker"
    marker.write_text("still here")
    again = ensure_demo_repository(tmp_path / "repo")
    assert again.commits == demo.commits
    assert marker.read_text() == "still here"
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]


def test_a_directory_that_is_not_the_demo_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    with pytest.raises(DemoError, match="is not the demo repository"):
        ensure_demo_repository(tmp_path / "repo")


def build(repo: Path, place: Path) -> Path:
    """Clone repo into place, run its build.sh, and return the artifacts directory."""
    checkout = place / "checkout"
    subprocess.run(["git", "clone", "--quiet", str(repo), str(checkout)], check=True, timeout=60)
    artifacts = place / "artifacts"
    scratch = place / "tmp"
    scratch.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BUILDCOORD_")  # no agent around: build.sh skips log events
    }
    env.update(
        SOURCE_DATE_EPOCH=EPOCH,
        BUILDCOORD_ARTIFACTS_DIR=str(artifacts),
        DEMO_STEP_SECONDS="0",
        TMPDIR=str(scratch),
    )
    result = subprocess.run(
        ["bash", "-c", "./build.sh"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "==> testing" in result.stdout
    return artifacts


def test_building_twice_with_the_same_source_date_epoch_gives_identical_bytes(
    tmp_path: Path,
) -> None:
    demo = ensure_demo_repository(tmp_path / "repo")
    first = build(demo.path, tmp_path / "first")
    (demo.path / "unrelated").write_text("the second build runs later, elsewhere")
    second = build(demo.path, tmp_path / "second")
    names = sorted(path.name for path in first.iterdir())
    assert "greet-1.0.0.tar.gz" in names
    if shutil.which("dpkg-deb"):
        assert "greet_1.0.0_all.deb" in names
    assert sorted(path.name for path in second.iterdir()) == names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_the_tarball_has_sorted_names_fixed_times_and_root_ownership(tmp_path: Path) -> None:
    demo = ensure_demo_repository(tmp_path / "repo")
    artifacts = build(demo.path, tmp_path / "build")
    with tarfile.open(artifacts / "greet-1.0.0.tar.gz") as archive:
        members = archive.getmembers()
    names = [member.name for member in members]
    assert names == sorted(names)
    assert {member.mtime for member in members} == {int(EPOCH)}
    assert {(member.uid, member.gid) for member in members} == {(0, 0)}
    greet = next(member for member in members if member.name.endswith("bin/greet"))
    assert greet.mode & stat.S_IXUSR
