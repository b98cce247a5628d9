"""Bad input fails the job with a clear reason, and the agent goes on serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildcoord.client import Client
from buildcoord.clock import FakeClock

from .conftest import Background, MakeAgent, SourceRepo, claimed_elsewhere, wait_for_output

pytestmark = pytest.mark.timeout(60)


def error_events(operator: Client, job_id: int) -> list[str]:
    """The messages of the job's error-level log entries."""
    return [e.message for e in operator.log_entries(job_id) if e.level == "error"]


def test_an_unreachable_repository_fails_the_job_with_the_reason_in_its_log(
    operator: Client, make_agent: MakeAgent, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-repository")
    operator.add_branch("main", repo=missing, command="true")
    job = operator.submit_job("main", "a" * 40)

    make_agent().step()

    done = operator.get_job(job.id)
    assert done.status == "failed"
    assert done.reason is not None
    assert done.reason.startswith(f"cannot fetch repository {missing}: git fetch failed")
    assert error_events(operator, job.id) == [done.reason]


def test_the_agent_builds_the_next_job_after_a_bad_one(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    operator.add_branch("broken", repo=str(tmp_path / "nowhere"), command="true")
    operator.add_branch("main", repo=source.url, command="true")
    bad = operator.submit_job("broken", "a" * 40)
    good = operator.submit_job("main")
    agent = make_agent()

    assert agent.step() is True
    assert agent.step() is True

    assert operator.get_job(bad.id).status == "failed"
    assert operator.get_job(good.id).status == "succeeded"


def test_a_commit_that_is_not_in_the_repository_fails_the_job(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("main", repo=source.url, command="true")
    job = operator.submit_job("main", "b" * 40)

    make_agent().step()

    done = operator.get_job(job.id)
    assert done.status == "failed"
    assert done.reason == f"commit {'b' * 40} is not in repository {source.url}"
    assert error_events(operator, job.id) == [done.reason]


def test_a_branch_missing_from_the_repository_fails_the_job(
    operator: Client, make_agent: MakeAgent, source: SourceRepo
) -> None:
    operator.add_branch("ghost", repo=source.url, command="true")
    commit = source.commit({"a.txt": "a\n"})
    job = operator.submit_job("ghost", commit)

    make_agent().step()

    done = operator.get_job(job.id)
    assert done.status == "failed"
    assert done.reason == f"branch ghost does not exist in repository {source.url}"


def test_a_late_report_after_the_job_was_re_leased_is_refused_and_dropped(
    operator: Client,
    make_agent: MakeAgent,
    source: SourceRepo,
    clock: FakeClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    go = tmp_path / "go"
    command = f"echo started; while [ ! -e {go} ]; do sleep 0.02; done; echo finished"
    operator.add_branch("main", repo=source.url, command=command)
    job = operator.submit_job("main")
    slow = make_agent("build1")
    other = make_agent("build2")
    running = Background(slow.step)
    wait_for_output(operator, job.id, "started")
    # build1 looks dead to the coordinator: its lease runs out, build2 takes the job.
    clock.advance(31)
    operator.maintenance_step()
    taken = claimed_elsewhere(other.client, "build2")

    go.touch()

    assert running.result() is True
    assert slow.last_result is not None
    assert slow.last_result.status == "succeeded"  # what it would have reported
    now = operator.get_job(job.id)
    assert (now.status, now.server, now.fencing_token) == ("running", "build2", taken.fencing_token)
    assert "finished" not in [e.message for e in operator.log_entries(job.id)]
    assert "refused the result" in caplog.text
