"""buildcoord branches add|set|toggle|list|show|check-updates|queue-all, driven in process."""

from __future__ import annotations

from pathlib import Path

from buildcoord.client import Client
from gitrepos import commit, git
from inprocess import RunCli


def test_branches_add_records_the_tip_and_builds_nothing(
    run_cli: RunCli, operator: Client, origin: Path
) -> None:
    tip = git(origin, "rev-parse", "main")
    out = run_cli("branches", "add", "main", "--repo", str(origin), "--command", "make")
    assert f"tip {tip[:12]} recorded as seen, not built" in out.stdout
    assert operator.list_jobs() == []


def test_branches_add_with_build_now_queues_the_tip(
    run_cli: RunCli, operator: Client, origin: Path
) -> None:
    tip = git(origin, "rev-parse", "main")
    out = run_cli("branches", "add", "main", "--repo", str(origin), "--command", "m", "--build-now")
    [job] = operator.list_jobs()
    assert job.commit == tip
    assert f"tip {tip[:12]} queued as job {job.id}" in out.stdout


def test_branches_add_with_build_now_says_when_the_tip_was_built_before(
    run_cli: RunCli, operator: Client, origin: Path
) -> None:
    tip = git(origin, "rev-parse", "main")
    run_cli("branches", "add", "main", "--repo", str(origin), "--command", "m", "--build-now")
    [job] = operator.list_jobs()
    operator.cancel_job(job.id)
    run_cli("branches", "remove", "main")
    out = run_cli("branches", "add", "main", "--repo", str(origin), "--command", "m", "--build-now")
    assert f"tip {tip[:12]} not queued again: job {job.id} is cancelled" in out.stdout
    assert len(operator.list_jobs()) == 1


def test_branches_add_takes_auto_build_schedule_and_enabled(
    run_cli: RunCli, operator: Client, origin: Path
) -> None:
    run_cli(
        "branches", "add", "main", "--repo", str(origin), "--command", "make",
        "--no-auto-build", "--schedule", "0 3 * * *", "--disabled",
    )  # fmt: skip
    branch = operator.get_branch("main")
    assert (branch.auto_build, branch.schedule, branch.enabled) == (False, "0 3 * * *", False)


def test_an_invalid_schedule_is_one_clear_error_line(run_cli: RunCli, origin: Path) -> None:
    out = run_cli("branches", "add", "main", "--repo", str(origin), "--schedule", "* * *")
    assert "expected 5 fields" in out.error


def test_branches_toggle_turns_a_branch_off_and_on(
    run_cli: RunCli, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    assert run_cli("branches", "toggle", "main", "off").last_line == "Branch main disabled"
    assert operator.get_branch("main").enabled is False
    assert run_cli("branches", "toggle", "main", "on").last_line == "Branch main enabled"
    assert operator.get_branch("main").enabled is True


def test_branches_toggle_refuses_an_unknown_branch_and_a_bad_state(
    run_cli: RunCli, origin: Path
) -> None:
    assert "not set up" in run_cli("branches", "toggle", "ghost", "on").error
    assert run_cli("branches", "toggle", "main", "true").exit_code == 2


def test_branches_set_changes_the_schedule_and_removes_it(
    run_cli: RunCli, operator: Client, origin: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    out = run_cli("branches", "set", "main", "--schedule", "@daily", "--no-auto-build")
    assert "auto-build off, schedule @daily" in out.stdout
    run_cli("branches", "set", "main", "--schedule", "")
    assert operator.get_branch("main").schedule is None


def test_branches_list_and_show_give_the_settings_and_the_poller_state(
    run_cli: RunCli, operator: Client, origin: Path, tmp_path: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make", schedule="0 3 * * *")
    operator.add_branch("gone", repo=str(tmp_path / "nowhere"), command="make")
    run_cli("branches", "check-updates")
    listing = run_cli("branches", "list").stdout
    assert "0 3 * * *" in listing
    assert git(origin, "rev-parse", "main")[:12] in listing
    assert "cannot read repository" in listing
    shown = run_cli("branches", "show", "gone").stdout
    assert "Check error: cannot read repository" in shown
    assert "Seen tip:   none yet" in shown
    shown = run_cli("branches", "show", "main").stdout
    assert "Schedule:   0 3 * * * (UTC)" in shown
    assert "Next scheduled build:" in shown


def test_branches_check_updates_queues_a_new_tip_once_and_reports_failures(
    run_cli: RunCli, operator: Client, origin: Path, tmp_path: Path
) -> None:
    operator.add_branch("main", repo=str(origin), command="make")
    new = commit(origin)
    out = run_cli("branches", "check-updates")
    assert out.stdout.startswith(f"main: queued {new[:12]} job ")
    assert run_cli("branches", "check-updates", "main").stdout.startswith("main: unchanged")
    operator.add_branch("gone", repo=str(tmp_path / "nowhere"), command="make")
    failed = run_cli("branches", "check-updates")
    assert failed.exit_code == 1
    assert "gone: failed" in failed.stdout
    assert len(operator.list_jobs()) == 1


def test_branches_queue_all_queues_the_remote_tips_in_json(
    run_cli: RunCli, operator: Client, origin: Path
) -> None:
    feature = commit(origin, "feature")
    git(origin, "checkout", "-q", "main")
    operator.add_branch("feature", repo=str(origin), command="make")
    result = run_cli("branches", "queue-all", "--json").json()
    assert [(r["branch"], r["outcome"], r["commit"]) for r in result] == [
        ("feature", "queued", feature)
    ]
