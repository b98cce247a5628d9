"""Agent claims (only buildable jobs, with their recipe) and lost-agent recovery by session."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from unittest.mock import ANY

import pytest
from sqlalchemy import select

import buildcoord.services.agents as agents_module
from buildcoord.clock import FakeClock
from buildcoord.errors import Forbidden
from buildcoord.models import Job, Principal
from buildcoord.services.agents import LOST_CHECK_SLACK_SECONDS, SESSION_HISTORY_SECONDS
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.maintenance import step
from buildcoord.store import Store
from buildcoord.store.schema import agent_sessions

RegisterServer = Callable[..., Principal]


def test_an_agent_claims_only_jobs_of_branches_with_a_build_command(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    coordinator.branches.add("manual", repo="/srv/repo", command=None, by=operator)
    coordinator.branches.add("main", repo="/srv/repo", command="./build.sh", by=operator)
    by_hand = coordinator.queue.submit("manual", "abcdef1", priority=1, by=operator)
    unknown = coordinator.queue.submit("elsewhere", "abcdef2", priority=1, by=operator)
    buildable = coordinator.queue.submit("main", "abcdef3", priority=9, by=operator)

    assignment = coordinator.agents.claim("build1", by=build1)

    assert assignment is not None
    assert assignment.job.id == buildable.id
    assert (assignment.repo, assignment.command) == ("/srv/repo", "./build.sh")
    assert coordinator.agents.claim("build1", by=build1) is None
    # ...and the by-hand jobs are still there for a person.
    assert coordinator.queue.claim_next("build1", by=operator) is not None
    assert {by_hand.id, unknown.id} & {
        job.id for job in coordinator.queue.list_jobs(status="running", by=operator)
    }


def test_a_job_whose_branch_lost_its_command_at_claim_fails_and_is_finished_like_any_failure(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    job = coordinator.queue.submit("main", "abcdef1", by=operator)
    claim = store.jobs.claim_for_server

    def claim_then_lose_the_command(server: str, **options: Any) -> Job | None:
        claimed = claim(server, **options)
        now = clock.now().timestamp()
        store.branches.update_branch("main", {"command": None}, now=now, actor="test")
        return claimed

    monkeypatch.setattr(store.jobs, "claim_for_server", claim_then_lose_the_command)

    assert coordinator.agents.claim("build1", by=build1) is None
    failed = coordinator.queue.get(job.id, by=operator)
    assert failed.status == "failed"
    assert "has no build command any more" in (failed.reason or "")
    # The after-finish hooks ran, as for any failure: the attempt is in the build history.
    [record] = store.history.recent_builds(10)
    assert (record.job_id, record.result) == (job.id, "failed")


def test_an_agent_may_not_claim_as_another_server(
    coordinator: Coordinator, build1: Principal, register_server: RegisterServer
) -> None:
    register_server("build2")
    with pytest.raises(Forbidden):
        coordinator.agents.claim("build2", by=build1)


def running_job(coordinator: Coordinator, operator: Principal, agent: Principal) -> int:
    """Queue a buildable job and let the agent claim it; return its id."""
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    coordinator.queue.submit("main", "abcdef1", by=operator)
    assignment = coordinator.agents.claim(str(agent.server), by=agent)
    assert assignment is not None
    return assignment.job.id


def test_a_dropped_session_requeues_the_agents_jobs_after_the_grace(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = running_job(coordinator, operator, build1)
    session = coordinator.agents.open_session("build1", by=build1)
    coordinator.agents.close_session(session)

    clock.advance(coordinator.settings.agent_reconnect_grace_seconds - 0.5)
    assert coordinator.agents.release_lost_agents() == []
    clock.advance(1.0)
    requeued = coordinator.agents.release_lost_agents()

    assert [job.id for job in requeued] == [job_id]
    job = coordinator.queue.get(job_id, by=operator)
    assert (job.status, job.attempt) == ("queued", 2)
    assert "agent build1 disconnected" in (job.reason or "")


def test_an_agent_that_reconnects_within_the_grace_keeps_its_jobs(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = running_job(coordinator, operator, build1)
    first = coordinator.agents.open_session("build1", by=build1)
    coordinator.agents.close_session(first)
    clock.advance(1.0)
    coordinator.agents.open_session("build1", by=build1)
    clock.advance(10.0)

    assert coordinator.agents.release_lost_agents() == []
    assert coordinator.queue.get(job_id, by=operator).status == "running"


def test_a_dropped_session_is_acted_on_once(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    running_job(coordinator, operator, build1)
    session = coordinator.agents.open_session("build1", by=build1)
    coordinator.agents.close_session(session)
    clock.advance(10.0)
    assert len(coordinator.agents.release_lost_agents()) == 1
    # The job was requeued and claimed again by the reconnected agent: nothing more happens.
    coordinator.agents.open_session("build1", by=build1)
    assert coordinator.agents.claim("build1", by=build1) is not None
    assert coordinator.agents.release_lost_agents() == []


def test_many_coordinators_checking_a_burst_of_drops_at_once_act_on_each_drop_once(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    register_server: RegisterServer,
    clock: FakeClock,
) -> None:
    names = [f"burst{i}" for i in range(12)]
    for name in names:
        agent = register_server(name)
        coordinator.agents.close_session(coordinator.agents.open_session(name, by=agent))
    clock.advance(10.0)
    now = clock.now().timestamp()
    found: list[list[str]] = []
    start = threading.Barrier(6)

    def check() -> None:
        start.wait()
        found.append(store.take_lost_servers(before=now - 3.0, now=now))

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    taken = [name for each in found for name in each]
    assert len(found) == 6
    assert sorted(taken) == sorted(names)  # every lost server once, by whichever check got it


def test_a_reconnected_agents_earlier_drop_is_never_acted_on_later(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = running_job(coordinator, operator, build1)
    coordinator.agents.close_session(coordinator.agents.open_session("build1", by=build1))
    current = coordinator.agents.open_session("build1", by=build1)
    clock.advance(10.0)
    assert coordinator.agents.release_lost_agents() == []
    # The current session drops: that drop, and only it, ends the agent's leases.
    coordinator.agents.close_session(current)
    clock.advance(10.0)
    assert [job.id for job in coordinator.agents.release_lost_agents()] == [job_id]
    assert coordinator.agents.release_lost_agents() == []


def test_sessions_that_ended_over_a_day_ago_are_forgotten_and_open_ones_kept(
    coordinator: Coordinator, store: Store, build1: Principal, clock: FakeClock
) -> None:
    coordinator.agents.close_session(coordinator.agents.open_session("build1", by=build1))
    coordinator.agents.open_session("build1", by=build1)  # still open, a day later
    clock.advance(SESSION_HISTORY_SECONDS - 60)
    assert coordinator.agents.forget_old_sessions() == 0
    coordinator.agents.close_session(coordinator.agents.open_session("build1", by=build1))
    clock.advance(120)

    assert coordinator.agents.forget_old_sessions() == 1
    with store.engine.connect() as conn:
        left = conn.execute(select(agent_sessions.c.disconnected_at)).scalars().all()
    assert sorted(left, key=lambda at: at is None) == [ANY, None]


def test_a_burst_of_dropped_sessions_shares_one_lost_agent_check(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[float] = []

    class CountedTimer(threading.Timer):
        def start(self) -> None:
            started.append(self.interval)

    monkeypatch.setattr(agents_module.threading, "Timer", CountedTimer)
    for _ in range(200):
        coordinator.agents.schedule_lost_agent_check()
    grace = coordinator.settings.agent_reconnect_grace_seconds

    assert len(started) == 1
    assert grace <= started[0] <= grace + LOST_CHECK_SLACK_SECONDS


def test_maintenance_releases_lost_agents(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = running_job(coordinator, operator, build1)
    coordinator.agents.close_session(coordinator.agents.open_session("build1", by=build1))
    clock.advance(5.0)
    assert job_id in step(coordinator).requeued_or_failed_jobs


def test_the_old_holder_of_a_requeued_job_cannot_complete_it(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    coordinator.queue.submit("main", "abcdef1", by=operator)
    first = coordinator.agents.claim("build1", by=build1)
    assert first is not None
    coordinator.agents.close_session(coordinator.agents.open_session("build1", by=build1))
    clock.advance(5.0)
    coordinator.agents.release_lost_agents()
    second = coordinator.agents.claim("build1", by=build1)
    assert second is not None
    assert second.job.fencing_token > first.job.fencing_token

    from buildcoord.errors import Conflict

    with pytest.raises(Conflict, match="stale fencing token"):
        coordinator.queue.complete(
            first.job.id,
            status="succeeded",
            server="build1",
            fencing_token=first.job.fencing_token,
            by=build1,
        )


def fail_next(coordinator: Coordinator, agent: Principal) -> tuple[int, str]:
    """Claim the next job as the agent and report it failed; return (id, status after)."""
    assignment = coordinator.agents.claim(str(agent.server), by=agent)
    assert assignment is not None
    job = coordinator.queue.complete(
        assignment.job.id,
        status="failed",
        exit_code=1,
        server=agent.server,
        fencing_token=assignment.job.fencing_token,
        by=agent,
    )
    return job.id, job.status


def test_a_failed_build_is_retried_when_its_branch_says_so(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    coordinator.branches.add(
        "flaky", repo="/srv/repo", command="make", retry_on_failure=True, by=operator
    )
    coordinator.queue.submit("flaky", "abcdef1", by=operator)
    job_id, status = fail_next(coordinator, build1)
    assert status == "queued"
    assert coordinator.queue.get(job_id, by=operator).attempt == 2


def test_a_failed_build_is_not_retried_by_default(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    coordinator.queue.submit("main", "abcdef1", by=operator)
    assert fail_next(coordinator, build1)[1] == "failed"


def test_retries_stop_at_the_attempt_limit(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    coordinator.branches.add(
        "flaky", repo="/srv/repo", command="make", retry_on_failure=True, by=operator
    )
    coordinator.queue.submit("flaky", "abcdef1", by=operator)
    statuses = [fail_next(coordinator, build1)[1] for _ in range(3)]
    assert statuses == ["queued", "queued", "failed"]
