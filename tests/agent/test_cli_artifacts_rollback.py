"""The CLI over artifacts, comparisons and rollback, with real builds by a real agent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from buildcoord.agent.agent import Agent
from buildcoord.client import Client
from inprocess import RunCli

from .conftest import MakeAgent, SourceRepo, git

pytestmark = pytest.mark.timeout(120)

# Reproducible on every agent: the same bytes whoever builds it.
SAME = 'printf "package %s\\n" "$BUILDCOORD_COMMIT" > "$BUILDCOORD_ARTIFACTS_DIR/app.deb"'
# Differs between servers: the server's name is in the package.
DIFFERENT = 'printf "%s\\n" "$BUILDCOORD_SERVER" > "$BUILDCOORD_ARTIFACTS_DIR/app.deb"'


def build(operator: Client, agent: Agent, branch: str = "main") -> int:
    job = operator.submit_job(branch)
    assert agent.step() is True
    agent.orders.run_pending()
    assert operator.get_job(job.id).status == "succeeded"
    return job.id


def build_on_both(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, command: str
) -> tuple[int, int]:
    operator.add_branch("main", repo=source.url, command=command)
    first, second = make_agent("build1"), make_agent("build2")
    return build(operator, first), build(operator, second)


def test_two_servers_building_the_same_commit_alike_are_recorded_reproducible(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, run_cli: RunCli
) -> None:
    a, b = build_on_both(operator, make_agent, source, SAME)

    [recorded] = operator.comparisons(branch="main")
    assert (recorded.job_a, recorded.job_b, recorded.reproducible) == (a, b, True)
    shown = run_cli("compare", "recorded", "--branch", "main")
    assert "REPRODUCIBLE" in shown.stdout
    latest = run_cli("compare", "latest", "main", "--servers", "build1,build2")
    assert latest.exit_code == 0, latest.stderr
    assert "REPRODUCIBLE" in latest.stdout


def test_two_servers_building_differently_are_recorded_not_reproducible_and_exit_1(
    operator: Client,
    make_agent: MakeAgent,
    source: SourceRepo,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    a, b = build_on_both(operator, make_agent, source, DIFFERENT)

    [recorded] = operator.comparisons()
    assert recorded.reproducible is False
    assert recorded.summary["counts"]["different"] == 1
    report = tmp_path / "report.md"
    outcome = run_cli("compare", "jobs", str(a), str(b), "--report", str(report))
    assert outcome.exit_code == 1
    assert "NOT REPRODUCIBLE" in outcome.stdout
    assert report.read_text().startswith("# Build Comparison Report")


def test_compare_latest_names_a_server_without_builds(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, run_cli: RunCli
) -> None:
    operator.add_branch("main", repo=source.url, command=SAME)
    build(operator, make_agent("build1"))
    outcome = run_cli("compare", "latest", "main", "--servers", "build1,build9")
    assert outcome.exit_code == 2
    assert "no successful build of main with artifacts on build9" in outcome.stderr


def test_artifacts_list_pin_and_cleanup_from_the_cli(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, run_cli: RunCli
) -> None:
    operator.add_branch("main", repo=source.url, command=SAME)
    agent = make_agent("build1")
    jobs = [build(operator, agent) for _ in range(3)]
    agent.orders.wake.clear()

    listed = run_cli("artifacts", "list", "--json").json()
    assert [item["job_id"] for item in listed] == jobs[::-1]
    assert run_cli("artifacts", "pin", str(jobs[0])).exit_code == 0
    dry = run_cli("artifacts", "cleanup", "--keep", "1", "--dry-run")
    assert f"Would remove job {jobs[1]}" in dry.stdout
    assert f"Would remove job {jobs[0]}" not in dry.stdout

    # The agent is not running its order thread here: the CLI says the order is pending.
    pending = run_cli("artifacts", "cleanup", "--keep", "1", "--wait", "0")
    assert pending.exit_code == 2
    assert "still pending on build1" in pending.stderr
    agent.orders.run_pending()
    assert not (agent.workspace.artifacts_path("main", jobs[1])).exists()
    table = run_cli("artifacts", "list", "--all").stdout
    assert "removed" in table
    assert "pinned" in table
    assert "last-good" in table


def test_rollback_round_trip_on_a_real_repository(
    operator: Client,
    make_agent: MakeAgent,
    source: SourceRepo,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    operator.add_branch("main", repo=source.url, command=SAME)
    agent = make_agent("build1")
    good_commit = git("rev-parse", "HEAD", cwd=source.path)
    job_id = build(operator, agent)
    source.commit({"broken": "yes"})  # a later commit, not yet built

    tag = run_cli("rollback", "last-good", "main", "--json").json()["tag"]
    assert run_cli("rollback", "list", "main").stdout.count("build-success-main-") == 1
    assert f"Job ID: {job_id}" in run_cli("rollback", "show", tag).stdout

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(source.path), str(clone)], check=True)
    moved = run_cli("rollback", "to", tag, "--repo", str(clone))
    branch = moved.last_line
    assert branch.startswith("rollback-")
    assert git("rev-parse", branch, cwd=clone) == good_commit

    restored = tmp_path / "restored"
    outcome = run_cli("rollback", "restore", "main", "--to", str(restored))
    assert outcome.exit_code == 0, outcome.stderr
    assert (restored / "app.deb").read_text() == f"package {good_commit}\n"


def test_rollback_to_refuses_a_missing_tag_and_a_directory_that_is_not_git(
    run_cli: RunCli, source: SourceRepo, tmp_path: Path
) -> None:
    assert (
        "build-success-nope"
        in run_cli("rollback", "to", "build-success-nope", "--repo", str(source.path)).error
    )
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "is not a git repository" in run_cli("rollback", "to", "x", "--repo", str(plain)).error


def test_restore_refuses_a_target_that_is_not_empty_and_writes_nothing(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, run_cli: RunCli, tmp_path: Path
) -> None:
    operator.add_branch("main", repo=source.url, command=SAME)
    build(operator, make_agent("build1"))
    target = tmp_path / "full"
    target.mkdir()
    (target / "mine").write_text("keep")
    assert "is not empty" in run_cli("rollback", "restore", "main", "--to", str(target)).error
    assert [p.name for p in target.iterdir()] == ["mine"]
