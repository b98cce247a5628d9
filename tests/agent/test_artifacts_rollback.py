"""Artifacts kept by the agent, retention carried out by it, and success tags in the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from buildcoord.agent.agent import Agent
from buildcoord.client import Client
from buildcoord.errors import NotFound

from .conftest import MakeAgent, SourceRepo, wait_for

pytestmark = pytest.mark.timeout(120)

PACKAGE = 'printf "%s" "$BUILDCOORD_JOB_ID" > "$BUILDCOORD_ARTIFACTS_DIR/app one.tar.gz"'


def build(operator: Client, agent: Agent, branch: str = "main") -> int:
    """Queue one build of branch, build it, carry out the orders that follow; its job id."""
    job = operator.submit_job(branch)
    assert agent.step() is True
    agent.orders.run_pending()
    assert operator.get_job(job.id).status == "succeeded"
    return job.id


def tags_of(repo: Path) -> list[str]:
    out = subprocess.run(
        ["git", "tag", "--list", "build-success-*"], cwd=repo, capture_output=True, text=True
    )
    return out.stdout.split()


def test_a_successful_build_is_tagged_in_the_source_repository_and_becomes_last_good(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("feature/x", repo=source.url, command=PACKAGE)
    source.commit({"x": "1"}, branch="feature/x")
    agent = make_agent()

    job_id = build(operator, agent, "feature/x")

    good = operator.last_good("feature/x")
    assert good.job_id == job_id
    assert good.tag_state == "written"
    assert good.tag is not None
    assert good.tag.startswith("build-success-feature-x-")
    assert tags_of(source.path) == [good.tag]
    raw = subprocess.run(
        ["git", "cat-file", "tag", good.tag], cwd=source.path, capture_output=True, text=True
    ).stdout
    assert f"Job ID: {job_id}" in raw
    assert "Branch: feature/x" in raw
    assert "Artifacts: 1" in raw
    assert operator.tag(good.tag).job_id == job_id


def test_a_branch_with_tagging_off_records_last_good_without_a_tag(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command=PACKAGE, tag_on_success=False)
    agent = make_agent()

    job_id = build(operator, agent)

    good = operator.last_good("main")
    assert (good.job_id, good.tag, good.tag_state) == (job_id, None, "none")
    assert tags_of(source.path) == []


def test_last_good_of_a_branch_without_success_is_a_clear_error(
    operator: Client, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="true")
    with pytest.raises(NotFound, match="no successful build recorded for branch main"):
        operator.last_good("main")


def test_retention_keeps_the_newest_builds_and_never_a_pinned_one_nor_outside_the_root(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    operator.add_branch("main", repo=source.url, command=PACKAGE)
    agent = make_agent()
    root = agent.workspace.artifacts_root
    first = build(operator, agent)
    operator.pin_artifacts(first)
    # Planted beside the builds: a sibling directory and a symlink out of the root.
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (root / "main" / "link").symlink_to(outside)
    (root / "sibling dir").mkdir()

    jobs = [first] + [build(operator, agent) for _ in range(6)]

    kept = {item.job_id for item in operator.artifact_sets(server="build1")}
    assert kept == {first, *jobs[-5:]}
    for job_id in jobs[1:2]:
        assert not (root / "main" / str(job_id)).exists()
    for job_id in kept:
        assert (root / "main" / str(job_id) / "app one.tar.gz").is_file()
    assert (outside / "keep.txt").read_text() == "mine"
    assert (root / "main" / "link").is_symlink()
    assert (root / "sibling dir").is_dir()
    removed = operator.artifact_sets(server="build1", include_removed=True)
    gone = [item for item in removed if item.removed_at is not None]
    assert [item.job_id for item in gone] == [jobs[1]]
    assert gone[0].freed_bytes == len(str(jobs[1]))


def test_cleanup_dry_run_lists_without_removing_and_a_real_one_reports_bytes_freed(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command=PACKAGE)
    agent = make_agent()
    jobs = [build(operator, agent) for _ in range(3)]

    plan = operator.cleanup_artifacts(keep=1, dry_run=True)
    # The newest is kept by --keep 1 and is also the last good build.
    assert [item.job_id for item in plan["removals"]] == [jobs[1], jobs[0]]
    assert plan["orders"] == []
    assert all((agent.workspace.artifacts_root / "main" / str(j)).is_dir() for j in jobs)

    started = operator.cleanup_artifacts(keep=1)
    assert len(started["orders"]) == 1
    agent.orders.run_pending()
    order = operator.order(started["orders"][0].id)
    assert order.status == "done"
    assert order.result is not None
    assert order.result["freed_bytes"] == len(str(jobs[0])) + len(str(jobs[1]))
    assert [item.job_id for item in operator.artifact_sets()] == [jobs[2]]


def test_the_agent_refuses_to_remove_a_path_outside_its_artifacts_root(
    operator: Client, make_agent: MakeAgent, tmp_path: Path
) -> None:
    agent = make_agent()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data").write_text("x")
    link_dir = agent.workspace.artifacts_root / "main"
    link_dir.mkdir(parents=True)
    (link_dir / "7").symlink_to(victim)

    result = agent.orders.remove_artifacts(
        [
            {"job_id": 5, "path": str(victim)},
            {"job_id": 6, "path": str(agent.workspace.artifacts_root / "main" / ".." / ".." / "x")},
            {"job_id": 7, "path": str(link_dir / "7")},
        ]
    )

    assert result["removed"] == []
    assert [item["job_id"] for item in result["refused"]] == [5, 6, 7]
    assert (victim / "data").read_text() == "x"


def test_tag_cleanup_deletes_old_tags_in_the_repository_and_the_registry_follows(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, clock: object
) -> None:
    operator.add_branch("main", repo=source.url, command=PACKAGE)
    agent = make_agent()
    jobs = [build(operator, agent) for _ in range(3)]
    tags = [operator.last_good("main").tag]
    assert len(tags_of(source.path)) == 3

    plan = operator.cleanup_tags(keep=1, branch="main")
    agent.orders.run_pending()

    assert len(plan["removals"]) == 2
    assert tags_of(source.path) == tags
    listed = operator.good_builds("main")
    assert [good.job_id for good in listed] == [jobs[2]]


def test_a_tag_is_pushed_on_to_the_repositorys_remote_only_when_the_branch_says_so(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    upstream = tmp_path / "upstream.git"
    subprocess.run(["git", "init", "-q", "--bare", str(upstream)], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(upstream)], cwd=source.path, check=True)
    operator.add_branch("main", repo=source.url, command=PACKAGE)
    operator.add_branch("other", repo=source.url, command=PACKAGE, push_tags=False)
    source.commit({"o": "1"}, branch="other")
    agent = make_agent()

    build(operator, agent, "main")
    build(operator, agent, "other")

    pushed, kept = operator.last_good("main"), operator.last_good("other")
    assert (pushed.pushed, kept.pushed) == (True, False)
    assert tags_of(upstream) == [pushed.tag]
    assert sorted(tags_of(source.path)) == sorted([pushed.tag, kept.tag])

    build(operator, agent, "main")
    operator.cleanup_tags(keep=1, branch="main")
    agent.orders.run_pending()
    newest = operator.last_good("main").tag
    assert tags_of(upstream) == [newest]
    assert sorted(tags_of(source.path)) == sorted([newest, kept.tag])


def test_a_tag_that_cannot_be_written_is_recorded_failed_with_gits_reason(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command=PACKAGE)
    agent = make_agent()
    job = operator.submit_job("main")
    assert agent.step() is True
    # The branch's repository disappears between the build and the tag.
    moved = source.path.with_name("moved")
    source.path.rename(moved)

    agent.orders.run_pending()

    good = operator.last_good("main")
    assert good.job_id == job.id
    assert good.tag_state == "failed"
    assert good.tag_error
    assert operator.good_builds("main")[0].tag_state == "failed"


def test_a_running_agent_carries_out_its_orders_when_its_session_announces_them(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command=PACKAGE)
    agent = make_agent()
    agent.start()  # session and order thread: the thread polls only every 30 s by itself
    job = operator.submit_job("main")
    assert agent.step() is True

    good = wait_for(
        lambda: (g := operator.last_good("main")).tag_state == "written" and g,
        timeout=10,
        what="the tag written through the session's orders event",
    )
    assert good.job_id == job.id
    assert tags_of(source.path) == [good.tag]
