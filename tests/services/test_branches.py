"""Branches: set-up rules, and what a set-up branch lends the jobs queued for it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from buildcoord.errors import Conflict, Forbidden, InvalidInput, NotFound
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator


def git(cwd: Path, *args: str) -> str:
    """Run git in cwd and return its stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real repository with a commit on main and one on feature/x."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "T")
    (path / "a.txt").write_text("one\n")
    git(path, "add", "a.txt")
    git(path, "commit", "-q", "-m", "first")
    git(path, "checkout", "-q", "-b", "feature/x")
    (path / "a.txt").write_text("two\n")
    git(path, "commit", "-q", "-am", "second")
    git(path, "checkout", "-q", "main")
    return path


def test_a_job_without_a_commit_builds_the_branch_tip(
    coordinator: Coordinator, operator: Principal, repo: Path
) -> None:
    coordinator.branches.add("feature/x", repo=str(repo), command="make", by=operator)
    job = coordinator.queue.submit("feature/x", by=operator)
    assert job.commit == git(repo, "rev-parse", "feature/x")


def test_a_set_up_branch_lends_its_priority_and_labels_to_its_jobs(
    coordinator: Coordinator, operator: Principal, repo: Path
) -> None:
    coordinator.branches.add(
        "main", repo=str(repo), command="make", priority=2, labels=["mvn"], by=operator
    )
    job = coordinator.queue.submit("main", "abcdef1", labels=["os=debian"], by=operator)
    assert job.priority == 2
    assert job.labels == ("mvn", "os=debian")


def test_an_explicit_priority_wins_over_the_branch_priority(
    coordinator: Coordinator, operator: Principal, repo: Path
) -> None:
    coordinator.branches.add("main", repo=str(repo), command="make", priority=2, by=operator)
    assert coordinator.queue.submit("main", "abcdef1", priority=7, by=operator).priority == 7


def test_a_job_without_a_commit_for_an_unknown_branch_is_refused(
    coordinator: Coordinator, operator: Principal
) -> None:
    with pytest.raises(NotFound, match="not set up"):
        coordinator.queue.submit("main", by=operator)
    assert coordinator.queue.list_jobs(by=operator) == []


def test_a_branch_missing_from_its_repository_has_no_tip(
    coordinator: Coordinator, operator: Principal, repo: Path
) -> None:
    coordinator.branches.add("gone", repo=str(repo), command="make", by=operator)
    with pytest.raises(NotFound, match="does not exist in"):
        coordinator.queue.submit("gone", by=operator)


def test_an_unreachable_repository_is_a_clear_error(
    coordinator: Coordinator, operator: Principal, tmp_path: Path
) -> None:
    coordinator.branches.add("main", repo=str(tmp_path / "nowhere"), command="make", by=operator)
    with pytest.raises(InvalidInput, match="cannot read repository"):
        coordinator.queue.submit("main", by=operator)
    assert coordinator.queue.list_jobs(by=operator) == []


def test_adding_a_branch_twice_is_a_conflict(
    coordinator: Coordinator, operator: Principal, repo: Path
) -> None:
    coordinator.branches.add("main", repo=str(repo), command="make", by=operator)
    with pytest.raises(Conflict):
        coordinator.branches.add("main", repo=str(repo), command="other", by=operator)
    assert coordinator.branches.get("main", by=operator).command == "make"


def test_bad_branch_settings_are_refused(
    coordinator: Coordinator, operator: Principal, repo: Path
) -> None:
    for kwargs in (
        {"name": "a..b"},
        {"priority": 0},
        {"timeout_seconds": -1.0},
        {"repo": ""},
        {"command": "x" * 10_001},
    ):
        fields = {"name": "main", "repo": str(repo), "command": "make"} | kwargs
        name = str(fields.pop("name"))
        with pytest.raises(InvalidInput):
            coordinator.branches.add(name, by=operator, **fields)  # type: ignore[arg-type]
    assert coordinator.branches.list_branches(by=operator) == []


def test_only_operators_set_up_branches(
    coordinator: Coordinator, register_server: object, repo: Path
) -> None:
    agent = Principal("agent", "agent build1", server="build1")
    with pytest.raises(Forbidden):
        coordinator.branches.add("main", repo=str(repo), command="rm -rf /", by=agent)


def test_removing_a_branch_keeps_its_jobs(
    coordinator: Coordinator, operator: Principal, repo: Path
) -> None:
    coordinator.branches.add("main", repo=str(repo), command="make", by=operator)
    job = coordinator.queue.submit("main", by=operator)
    coordinator.branches.remove("main", by=operator)
    assert coordinator.queue.get(job.id, by=operator).status == "queued"
    with pytest.raises(NotFound):
        coordinator.branches.get("main", by=operator)
