"""Builds that must stop: timeout, cancel, a lease taken over, the agent told to stop.

Each build starts a background ``sleep 300`` in its process group and writes the pids
(bash first) to a file, so the test can check by pid that nothing of the build survives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.errors import InvalidInput

from .conftest import (
    Background,
    MakeAgent,
    SourceRepo,
    assert_gone,
    claimed_elsewhere,
    read_pids,
    wait_for,
    wait_for_output,
)

pytestmark = pytest.mark.timeout(60)


def long_build(pids: Path) -> str:
    """A build command that leaves a child behind and then waits a long time."""
    return f"sleep 300 & echo $$ $! > {pids}; echo started; sleep 300"


def test_a_build_past_its_timeout_fails_and_its_whole_process_group_is_killed(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    operator.add_branch("main", repo=source.url, command=long_build(pids), timeout_seconds=1)
    job = operator.submit_job("main")

    make_agent().step()

    done = operator.get_job(job.id)
    assert done.status == "failed"
    assert done.reason == "build timed out after 1 s; its process group was killed"
    bash = read_pids(pids)[0]
    assert_gone(read_pids(pids), group=bash)


def test_an_operator_cancel_mid_build_kills_the_process_group_and_the_job_stays_cancelled(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    operator.add_branch("main", repo=source.url, command=long_build(pids))
    job = operator.submit_job("main")
    agent = make_agent()
    agent.start()  # the session: cancel events come through it
    running = Background(agent.step)
    wait_for_output(operator, job.id, "started")

    operator.cancel_job(job.id, reason="not needed")

    assert running.result(timeout=10) is True
    assert agent.last_result is not None
    assert agent.last_result.status == "cancelled"
    assert_gone(read_pids(pids), group=read_pids(pids)[0])
    assert operator.get_job(job.id).status == "cancelled"


def test_a_cancel_missed_by_the_session_is_noticed_at_the_next_lease_renewal(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    operator.add_branch("main", repo=source.url, command=long_build(pids))
    job = operator.submit_job("main")
    agent = make_agent(lease_seconds=6)  # renews every 2 s; no session started
    running = Background(agent.step)
    wait_for_output(operator, job.id, "started")

    operator.cancel_job(job.id)

    assert running.result(timeout=10) is True
    assert agent.last_result is not None
    assert agent.last_result.status == "cancelled"
    assert_gone(read_pids(pids), group=read_pids(pids)[0])


def test_a_build_whose_lease_was_taken_over_is_killed_at_the_next_renewal(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path, clock: FakeClock
) -> None:
    pids = tmp_path / "pids"
    operator.add_branch("main", repo=source.url, command=long_build(pids))
    job = operator.submit_job("main")
    agent = make_agent(lease_seconds=6)
    other = make_agent("build2")
    running = Background(agent.step)
    wait_for_output(operator, job.id, "started")
    clock.advance(31)
    operator.maintenance_step()
    taken = claimed_elsewhere(other.client, "build2")

    assert running.result(timeout=10) is True

    assert agent.last_result is not None
    assert agent.last_result.status == "lost"
    assert_gone(read_pids(pids), group=read_pids(pids)[0])
    now = operator.get_job(job.id)
    assert (now.status, now.server, now.fencing_token) == ("running", "build2", taken.fencing_token)


def test_a_stop_request_lets_the_current_build_finish_then_run_returns(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    command = f"echo started; while [ ! -e {go} ]; do sleep 0.02; done"
    operator.add_branch("main", repo=source.url, command=command)
    job = operator.submit_job("main")
    waiting = operator.submit_job("main")
    agent = make_agent()
    running = Background(agent.run)
    wait_for_output(operator, job.id, "started")

    agent.request_stop()
    go.touch()

    running.result(timeout=10)
    assert operator.get_job(job.id).status == "succeeded"
    assert operator.get_job(waiting.id).status == "queued"


def test_a_second_stop_request_cancels_the_build_and_reports_it_failed(
    operator: Client, make_agent: MakeAgent, source: SourceRepo, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    operator.add_branch("main", repo=source.url, command=long_build(pids))
    job = operator.submit_job("main")
    agent = make_agent()
    running = Background(agent.run)
    wait_for_output(operator, job.id, "started")

    agent.request_stop()
    agent.request_stop()

    running.result(timeout=10)
    done = operator.get_job(job.id)
    assert done.status == "failed"
    assert done.reason == "build cancelled: agent build1 was stopped"
    assert_gone(read_pids(pids), group=read_pids(pids)[0])


def test_the_first_heartbeat_reports_the_agents_labels_and_metrics(
    operator: Client, make_agent: MakeAgent
) -> None:
    agent = make_agent(labels=("os=debian",), reports=("mvn", "jdk"))

    agent.start()

    server = wait_for(lambda: operator.get_server("build1"), what="the server")
    assert (server.labels, server.reported_labels) == (("os=debian",), ("jdk", "mvn"))
    assert server.agent_version is not None
    assert server.metrics is not None
    assert server.metrics.memory_total_bytes
    assert server.metrics.disk_free_bytes


def test_an_agent_reporting_a_server_label_is_refused_at_start(make_agent: MakeAgent) -> None:
    agent = make_agent(reports=("server=build2",))

    with pytest.raises(InvalidInput, match="server="):
        agent.start()
