"""Build history: one row per finished attempt that ran, whatever ended it."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput
from buildcoord.models import BuildRecord, Principal
from buildcoord.services import maintenance
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.store.engine import read_transaction
from buildcoord.store.history import build_key, record_from_row
from buildcoord.store.schema import build_history

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def history(store: Store) -> list[BuildRecord]:
    """Every history row, by job and attempt."""
    query = select(build_history).order_by(build_history.c.job_id, build_history.c.attempt)
    with read_transaction(store.engine) as conn:
        return [record_from_row(row) for row in conn.execute(query)]


def start(coordinator: Coordinator, operator: Principal, agent: Principal) -> int:
    """Queue a build of main (set up with a command) and let the agent claim it."""
    if coordinator.store.branches.find_branch("main") is None:
        coordinator.branches.add("main", repo="/srv/repo", command="make all", by=operator)
    coordinator.queue.submit("main", COMMIT, by=operator)
    assignment = coordinator.agents.claim("build1", by=agent)
    assert assignment is not None
    return assignment.job.id


def test_a_successful_build_records_its_key_times_wait_and_result(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    coordinator.branches.add("main", repo="/srv/repo", command="make all", by=operator)
    job = coordinator.queue.submit("main", COMMIT, by=operator)
    clock.advance(30)
    claimed = coordinator.queue.claim_next("build1", by=build1)
    assert claimed is not None
    clock.advance(100)
    coordinator.queue.complete(
        job.id,
        status="succeeded",
        duration=98.5,
        server="build1",
        fencing_token=claimed.fencing_token,
        by=build1,
    )

    [record] = history(coordinator.store)
    assert (record.job_id, record.attempt, record.branch, record.server) == (
        job.id,
        1,
        "main",
        "build1",
    )
    assert record.build_key == build_key("main", "make all")
    assert (record.result, record.duration, record.queue_wait) == ("succeeded", 98.5, 30.0)
    assert record.commit == COMMIT
    # FakeClock starts on Thursday 2026-01-01 00:00 UTC.
    assert (record.hour_of_day, record.day_of_week) == (0, 3)


def test_a_failed_build_is_recorded_once_per_attempt_when_it_is_retried(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    coordinator.branches.add(
        "main", repo="/srv/repo", command="make", retry_on_failure=True, by=operator
    )
    job = coordinator.queue.submit("main", COMMIT, by=operator)
    for _ in range(2):
        claimed = coordinator.queue.claim_next("build1", by=build1)
        assert claimed is not None
        clock.advance(10)
        coordinator.queue.complete(
            job.id,
            status="failed",
            exit_code=2,
            server="build1",
            fencing_token=claimed.fencing_token,
            by=build1,
        )

    records = history(coordinator.store)
    assert [(r.attempt, r.result, r.duration) for r in records] == [
        (1, "failed", 10.0),
        (2, "failed", 10.0),
    ]


def test_cancelling_a_running_job_records_it_and_a_queued_one_does_not(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    running = start(coordinator, operator, build1)
    waiting = coordinator.queue.submit("main", COMMIT, by=operator)
    clock.advance(42)
    coordinator.queue.cancel(running, by=operator)
    coordinator.queue.cancel(waiting.id, by=operator)

    [record] = history(coordinator.store)
    assert (record.job_id, record.result, record.duration) == (running, "cancelled", 42.0)


def test_a_lease_that_expires_on_the_last_attempt_records_a_failure(
    store: Store, operator: Principal, clock: FakeClock
) -> None:
    coordinator = Coordinator(store, Settings(max_attempts=1), clock)
    coordinator.servers.register("build1", by=operator)
    agent = Principal("agent", "agent build1", server="build1")
    job_id = start(coordinator, operator, agent)
    clock.advance(coordinator.settings.job_lease_seconds + 1)

    [expired] = coordinator.queue.expire_leases()

    assert (expired.id, expired.status) == (job_id, "failed")
    [record] = history(store)
    assert (record.job_id, record.result) == (job_id, "failed")
    assert record.duration == coordinator.settings.job_lease_seconds + 1


def test_a_lease_that_expires_and_is_requeued_records_a_lost_attempt_on_its_server(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = start(coordinator, operator, build1)
    clock.advance(coordinator.settings.job_lease_seconds + 1)

    [expired] = coordinator.queue.expire_leases()

    assert (expired.status, expired.attempt) == ("queued", 2)
    [record] = history(coordinator.store)
    assert (record.job_id, record.attempt, record.result, record.server) == (
        job_id,
        1,
        "lost",
        "build1",
    )
    assert record.duration == coordinator.settings.job_lease_seconds + 1
    assert record.finished_at == clock.now()


def test_an_agent_lost_and_its_job_requeued_records_a_lost_attempt(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = start(coordinator, operator, build1)
    session = coordinator.agents.open_session("build1", by=build1)
    clock.advance(30)
    coordinator.agents.close_session(session)
    clock.advance(coordinator.settings.agent_reconnect_grace_seconds + 1)

    [requeued] = coordinator.agents.release_lost_agents()

    assert requeued.status == "queued"
    [record] = history(coordinator.store)
    assert (record.job_id, record.result, record.server) == (job_id, "lost", "build1")
    assert record.duration == 30 + coordinator.settings.agent_reconnect_grace_seconds + 1


def test_lost_attempts_are_counted_apart_from_builds_in_the_statistics_and_learnt_nothing_from(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = start(coordinator, operator, build1)
    clock.advance(coordinator.settings.job_lease_seconds + 1)
    coordinator.queue.expire_leases()
    again = coordinator.agents.claim("build1", by=build1)
    assert again is not None
    assert (again.job.id, again.job.attempt) == (job_id, 2)
    clock.advance(120)
    coordinator.queue.complete(
        job_id,
        status="succeeded",
        exit_code=0,
        duration=120.0,
        server="build1",
        fencing_token=again.job.fencing_token,
        by=build1,
    )

    stats = coordinator.prediction.stats(by=operator)
    [server] = stats.by_server
    assert (stats.builds, server.count, server.succeeded, server.lost) == (1, 1, 1, 1)
    assert server.success_rate == 1.0
    estimate = coordinator.prediction.duration("main", by=operator)
    assert (estimate.p50, estimate.history) == (120.0, 1)
    health = coordinator.health.fleet(by=operator)
    assert (health.builds_24h, health.success_rate_24h) == (1, 1.0)


def test_an_agent_lost_on_the_last_attempt_records_a_failure(
    store: Store, operator: Principal, clock: FakeClock
) -> None:
    coordinator = Coordinator(store, Settings(max_attempts=1), clock)
    coordinator.servers.register("build1", by=operator)
    agent = Principal("agent", "agent build1", server="build1")
    job_id = start(coordinator, operator, agent)
    session = coordinator.agents.open_session("build1", by=agent)
    coordinator.agents.close_session(session)
    clock.advance(coordinator.settings.agent_reconnect_grace_seconds + 1)

    [lost] = coordinator.agents.release_lost_agents()

    assert lost.status == "failed"
    [record] = history(store)
    assert (record.job_id, record.result, record.server) == (job_id, "failed", "build1")


def test_recording_a_job_twice_keeps_one_row(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = start(coordinator, operator, build1)
    clock.advance(5)
    coordinator.queue.cancel(job_id, by=operator)
    job = coordinator.queue.get(job_id, by=operator)

    assert coordinator.prediction.record(job) is None
    assert len(history(coordinator.store)) == 1


def test_a_branch_without_a_set_up_command_gets_its_own_build_key(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job = coordinator.queue.submit("adhoc", COMMIT, by=operator)
    claimed = coordinator.queue.claim_next("build1", by=build1)
    assert claimed is not None
    assert claimed.id == job.id
    clock.advance(3)
    coordinator.queue.complete(job.id, status="succeeded", by=operator)

    [record] = history(coordinator.store)
    assert record.build_key == build_key("adhoc", None)
    assert record.build_key != build_key("adhoc", "make")


@pytest.mark.parametrize("duration", [math.inf, math.nan, -1.0])
def test_a_build_reported_with_a_non_finite_or_negative_duration_is_refused_and_not_recorded(
    coordinator: Coordinator, operator: Principal, build1: Principal, duration: float
) -> None:
    job_id = start(coordinator, operator, build1)
    token = coordinator.store.jobs.get_job(job_id).fencing_token
    with pytest.raises(InvalidInput, match="invalid duration"):
        coordinator.queue.complete(
            job_id,
            status="succeeded",
            duration=duration,
            server="build1",
            fencing_token=token,
            by=build1,
        )
    assert history(coordinator.store) == []
    assert coordinator.store.jobs.get_job(job_id).status == "running"


def test_a_finished_build_whose_recording_was_lost_is_recorded_by_maintenance_a_minute_on(
    coordinator: Coordinator, operator: Principal, build1: Principal, clock: FakeClock
) -> None:
    job_id = start(coordinator, operator, build1)
    job = coordinator.store.get_job(job_id)
    clock.advance(90)
    # The completion commits, and the connection is lost before its after-finish recording:
    # the store's completion alone, no hook.
    coordinator.store.jobs.complete_job(
        job_id,
        server="build1",
        fencing_token=job.fencing_token,
        status="succeeded",
        exit_code=0,
        duration=90.0,
        reason=None,
        now=clock.now().timestamp(),
        actor=build1.actor,
    )
    assert history(coordinator.store) == []
    maintenance.step(coordinator)  # too soon: left to its own recording
    assert history(coordinator.store) == []

    clock.advance(61)
    maintenance.step(coordinator)

    [record] = history(coordinator.store)
    assert (record.job_id, record.attempt, record.result, record.duration) == (
        job_id,
        1,
        "succeeded",
        90.0,
    )
    estimate = coordinator.prediction.duration("main", by=operator)
    assert (estimate.p50, estimate.history) == (90.0, 1)
    clock.advance(61)
    maintenance.step(coordinator)  # recorded once, whatever the next looks find
    assert len(history(coordinator.store)) == 1
