"""buildcoord legacy import|export, and queue show|list by a seed id, driven in process; export
--git commits into and pushes from a real git checkout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.models import Metrics
from gitrepos import git
from inprocess import Connect, RunCli

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "legacy-state"


def test_a_dry_run_reports_what_would_come_in_and_stores_nothing(
    run_cli: RunCli, operator: Client
) -> None:
    outcome = run_cli("legacy", "import", str(SAMPLE), "--dry-run")
    assert outcome.exit_code == 0, outcome.stderr
    assert "Would import" in outcome.stdout
    assert "Dry run: nothing was stored." in outcome.stdout
    assert "job_1761778190_1804: it names no branch and commit" in outcome.stdout
    assert operator.list_servers() == []


def test_import_prints_each_kind_each_skip_with_its_reason_and_the_new_agents_tokens(
    run_cli: RunCli, operator: Client, connect: Connect
) -> None:
    outcome = run_cli("legacy", "import", str(SAMPLE))
    assert outcome.exit_code == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert any(line.split()[:3] == ["servers", "4", "added,"] for line in lines)
    assert any(line.split()[:3] == ["messages", "59", "added,"] for line in lines)
    assert "Skipped (" in outcome.stdout
    assert "coordination/jobs.json job_1761778190_1804: it names no branch" in outcome.stdout
    tokens = lines[lines.index(next(line for line in lines if "Agent tokens" in line)) + 1 :]
    assert [line.split()[0] for line in tokens] == ["build1", "build2", "build3", "build4"]
    # Each printed token is build1's own agent token.
    agent = connect(tokens[0].split()[1])
    assert agent.heartbeat("build1", Metrics()).name == "build1"

    again = run_cli("legacy", "import", str(SAMPLE), "--json")
    data = json.loads(again.stdout)
    assert sum(data["added"].values()) == 0
    assert data["unchanged"]["job"] == 2
    assert data["tokens"] == {}


def test_queue_show_and_list_find_an_imported_job_by_its_seed_id(
    run_cli: RunCli, operator: Client
) -> None:
    run_cli("legacy", "import", str(SAMPLE))
    shown = run_cli("queue", "show", "job_1761781030")
    assert shown.exit_code == 0, shown.stderr
    assert "Seed id:        job_1761781030" in shown.stdout
    assert "Seed type:      package" in shown.stdout
    job_id = next(line.split()[-1] for line in shown.stdout.splitlines() if line.startswith("Job:"))
    by_id = run_cli("queue", "show", job_id, "--json")
    assert json.loads(by_id.stdout)["seed"]["id"] == "job_1761781030"
    listed = run_cli("queue", "list", "--seed-id", "job_1761779789")
    assert listed.exit_code == 0, listed.stderr
    assert len(listed.stdout.strip().splitlines()) == 1
    assert "ExternalNew" in listed.stdout
    unknown = run_cli("queue", "show", "job_404")
    assert unknown.exit_code == 1
    assert "no job was imported as 'job_404'" in unknown.stderr


def test_a_directory_that_is_not_a_seed_checkout_is_an_error_and_imports_nothing(
    run_cli: RunCli, operator: Client, tmp_path: Path
) -> None:
    (tmp_path / "notes.json").write_text("{}")
    outcome = run_cli("legacy", "import", str(tmp_path))
    assert outcome.exit_code == 1
    assert "is not a seed checkout" in outcome.stderr
    assert "nothing imported" in outcome.stderr
    assert operator.list_servers() == []


def test_export_writes_the_seed_files_and_with_git_commits_and_pushes_only_a_change(
    run_cli: RunCli, operator: Client, tmp_path: Path, clock: FakeClock
) -> None:
    run_cli("legacy", "import", str(SAMPLE))
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(remote), str(checkout))
    for key, value in (("user.name", "seed"), ("user.email", "seed@example.invalid")):
        git(checkout, "config", key, value)
    shutil.copytree(SAMPLE, checkout, dirs_exist_ok=True)
    git(checkout, "add", ".")
    git(checkout, "commit", "-q", "-m", "the seed's state")
    git(checkout, "push", "-q", "-u", "origin", "main")

    first = run_cli("legacy", "export", str(checkout), "--git")
    assert first.exit_code == 0, (first.stdout, first.stderr)
    assert "pushed" in first.stdout
    assert git(remote, "log", "-1", "--format=%s", "main").startswith("buildcoord export [")
    jobs = json.loads((checkout / "coordination" / "jobs.json").read_text())
    assert {job["id"] for job in jobs["jobs"]} == {"job_1761781030", "job_1761779789"}
    assert not list(checkout.rglob("*.tmp"))
    commits = git(remote, "rev-list", "--count", "main")

    clock.advance(3600)  # later, and nothing changed: the same files, no commit
    second = run_cli("legacy", "export", str(checkout), "--git")
    assert second.exit_code == 0, second.stderr
    assert ", 0 changed" in second.stdout
    assert git(remote, "rev-list", "--count", "main") == commits

    operator.send_message(
        sender="build1", recipient="build2", type="info", subject="new", body="a change"
    )
    third = run_cli("legacy", "export", str(checkout), "--git")
    assert third.exit_code == 0, third.stderr
    assert int(git(remote, "rev-list", "--count", "main")) == int(commits) + 1
    assert git(checkout, "status", "--porcelain") == ""


def test_export_with_git_outside_a_git_checkout_is_an_error(
    run_cli: RunCli, tmp_path: Path
) -> None:
    outcome = run_cli("legacy", "export", str(tmp_path / "plain"), "--git")
    assert outcome.exit_code == 1
    assert "git rev-parse" in outcome.stderr


def test_export_pulls_what_others_pushed_before_it_commits(
    run_cli: RunCli, operator: Client, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for checkout in (ours, theirs):
        git(tmp_path, "clone", "-q", str(remote), str(checkout))
        git(checkout, "config", "user.name", "seed")
        git(checkout, "config", "user.email", "seed@example.invalid")
    (theirs / "README.md").write_text("the seed\n")
    git(theirs, "add", ".")
    git(theirs, "commit", "-q", "-m", "first")
    git(theirs, "push", "-q", "-u", "origin", "main")
    git(ours, "pull", "-q", "origin", "main")
    git(ours, "branch", "-q", "--set-upstream-to=origin/main", "main")
    (theirs / "build9.txt").write_text("a seed script still writes\n")
    git(theirs, "add", ".")
    git(theirs, "commit", "-q", "-m", "the seed's own change")
    git(theirs, "push", "-q")

    outcome = run_cli("legacy", "export", str(ours), "--git")

    assert outcome.exit_code == 0, (outcome.stdout, outcome.stderr)
    log = git(remote, "log", "--format=%s", "main").splitlines()
    assert log[0].startswith("buildcoord export [")
    assert log[1:] == ["the seed's own change", "first"]
