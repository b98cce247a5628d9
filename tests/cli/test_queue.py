"""buildcoord queue add|list|show|next|complete|cancel|retry, driven in process."""

from __future__ import annotations

from buildcoord.client import Client
from inprocess import RunCli


def test_queue_add_prints_the_job_id_as_its_last_line(run_cli: RunCli, operator: Client) -> None:
    job_id = int(run_cli("queue", "add", "main", "abc1234").last_line)
    job = operator.get_job(job_id)
    assert (job.branch, job.commit, job.priority, job.status) == ("main", "abc1234", 5, "queued")


def test_queue_add_takes_priority_dependencies_and_labels(
    run_cli: RunCli, operator: Client
) -> None:
    first = operator.submit_job("main", "abc1234")
    second = operator.submit_job("main", "abc1235")
    job_id = run_cli(
        "queue",
        "add",
        "feature/x",
        "def5678",
        "--priority",
        "2",
        "--depends-on",
        f"{first.id},{second.id}",
        "--labels",
        "mvn,os=debian",
    ).last_line
    job = operator.get_job(int(job_id))
    assert job.priority == 2
    assert job.depends_on == (first.id, second.id)
    assert job.labels == ("mvn", "os=debian")


def test_queue_next_claims_a_job_and_prints_its_id_last(run_cli: RunCli, operator: Client) -> None:
    operator.register_server("build1")
    job = operator.submit_job("main", "abc1234")
    assert run_cli("queue", "next", "--server", "build1").last_line == str(job.id)
    claimed = operator.get_job(job.id)
    assert (claimed.status, claimed.server) == ("running", "build1")


def test_queue_next_with_nothing_to_claim_exits_1_saying_so(
    run_cli: RunCli, operator: Client
) -> None:
    operator.register_server("build1")
    outcome = run_cli("queue", "next", "--server", "build1")
    assert outcome.exit_code == 1
    assert outcome.stderr.strip() == "No eligible jobs found"
    assert outcome.stdout == ""


def test_queue_complete_records_status_exit_code_and_duration(
    run_cli: RunCli, operator: Client
) -> None:
    operator.register_server("build1")
    job = operator.submit_job("main", "abc1234")
    operator.claim_job("build1")
    outcome = run_cli(
        "queue",
        "complete",
        str(job.id),
        "--status",
        "failed",
        "--exit-code",
        "3",
        "--duration",
        "4.5",
    )
    assert "failed" in outcome.stdout
    done = operator.get_job(job.id)
    assert (done.status, done.exit_code, done.duration) == ("failed", 3, 4.5)


def test_queue_list_shows_every_job(run_cli: RunCli, operator: Client) -> None:
    first = operator.submit_job("main", "abc1234")
    second = operator.submit_job("main", "abc1235")
    operator.cancel_job(second.id)
    stdout = run_cli("queue", "list").stdout
    assert f"{first.id} [queued]" in stdout
    assert f"{second.id} [cancelled]" in stdout


def test_queue_list_of_one_status_shows_only_those_jobs(run_cli: RunCli, operator: Client) -> None:
    first = operator.submit_job("main", "abc1234")
    second = operator.submit_job("main", "abc1235")
    operator.cancel_job(second.id)
    lines = run_cli("queue", "list", "queued").stdout.splitlines()
    assert [line.split()[0] for line in lines] == [str(first.id)]


def test_queue_show_prints_the_job(run_cli: RunCli, operator: Client) -> None:
    job = operator.submit_job("feature/x", "abc1234", priority=3)
    stdout = run_cli("queue", "show", str(job.id)).stdout
    assert "feature/x" in stdout
    assert "abc1234" in stdout
    assert "Priority:" in stdout


def test_queue_cancel_cancels_the_job(run_cli: RunCli, operator: Client) -> None:
    job = operator.submit_job("main", "abc1234")
    assert run_cli("queue", "cancel", str(job.id)).exit_code == 0
    assert operator.get_job(job.id).status == "cancelled"


def test_queue_retry_queues_a_new_attempt(run_cli: RunCli, operator: Client) -> None:
    job = operator.submit_job("main", "abc1234")
    operator.cancel_job(job.id)
    assert "attempt 2" in run_cli("queue", "retry", str(job.id)).stdout
    assert operator.get_job(job.id).status == "queued"


def test_queue_priority_changes_a_waiting_jobs_priority(run_cli: RunCli, operator: Client) -> None:
    job = operator.submit_job("main", "abc1234")
    assert "priority: 2" in run_cli("queue", "priority", str(job.id), "2").stdout
    assert operator.get_job(job.id).priority == 2


def test_queue_priority_out_of_range_is_one_error_line_and_changes_nothing(
    run_cli: RunCli, operator: Client
) -> None:
    job = operator.submit_job("main", "abc1234")
    assert "priority" in run_cli("queue", "priority", str(job.id), "0").error
    assert operator.get_job(job.id).priority == 5


def test_queue_add_with_a_bad_priority_is_one_error_line(run_cli: RunCli, operator: Client) -> None:
    assert "priority" in run_cli("queue", "add", "main", "abc1234", "--priority", "11").error
    assert operator.list_jobs() == []


def test_queue_add_with_a_bad_branch_is_one_error_line(run_cli: RunCli, operator: Client) -> None:
    assert "branch" in run_cli("queue", "add", "a..b", "abc1234").error
    assert operator.list_jobs() == []


def test_queue_add_with_a_bad_commit_is_one_error_line(run_cli: RunCli, operator: Client) -> None:
    assert "commit" in run_cli("queue", "add", "main", "xyz").error
    assert operator.list_jobs() == []


def test_queue_add_with_a_bad_dependency_list_is_one_error_line(
    run_cli: RunCli, operator: Client
) -> None:
    assert "dependency" in run_cli("queue", "add", "main", "abc1234", "--depends-on", "1,x").error
    assert operator.list_jobs() == []


def test_queue_show_of_an_unknown_job_is_one_error_line(run_cli: RunCli) -> None:
    assert "999" in run_cli("queue", "show", "999").error


def test_queue_cancel_of_a_finished_job_is_one_error_line(
    run_cli: RunCli, operator: Client
) -> None:
    job = operator.submit_job("main", "abc1234")
    operator.cancel_job(job.id)
    assert "already cancelled" in run_cli("queue", "cancel", str(job.id)).error


def test_queue_add_records_a_manual_build_unless_given_a_trigger(
    run_cli: RunCli, operator: Client
) -> None:
    plain = int(run_cli("queue", "add", "main", "abc1234").last_line)
    given = int(run_cli("queue", "add", "main", "abc1234", "--trigger", "pull_request").last_line)
    assert operator.get_job(plain).trigger == "manual"
    assert operator.get_job(given).trigger == "pull_request"


def test_queue_add_with_a_bad_trigger_is_one_error_line_and_stores_nothing(
    run_cli: RunCli, operator: Client
) -> None:
    error = run_cli("queue", "add", "main", "abc1234", "--trigger", "Pull Request").error
    assert "invalid trigger" in error
    assert operator.list_jobs() == []


def test_queue_show_prints_the_trigger(run_cli: RunCli, operator: Client) -> None:
    job = operator.submit_job("main", "abc1234", trigger="schedule")
    lines = run_cli("queue", "show", str(job.id)).stdout.splitlines()
    assert "Trigger:        schedule" in lines
