"""The job queue's leases and fencing tokens: completion, renewal, expiry, late writes."""

from __future__ import annotations

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

from .queue_helpers import LEASE, claim, claim_id, finish, submit


def test_it_leases_a_claimed_job_with_a_fencing_token(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)

    job = claim(coordinator, build1)

    assert job is not None
    assert (job.status, job.server, job.fencing_token, job.attempt) == ("running", "build1", 1, 1)
    assert job.lease_expires_at is not None
    assert job.lease_expires_at.timestamp() == clock.now().timestamp() + LEASE


def test_it_completes_a_job_for_the_holder_with_the_current_token(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    done = coordinator.queue.complete(
        job.id,
        status="succeeded",
        exit_code=0,
        duration=12.5,
        server="build1",
        fencing_token=job.fencing_token,
        by=build1,
    )

    assert (done.status, done.exit_code, done.duration) == ("succeeded", 0, 12.5)
    assert done.finished_at == clock.now()
    assert done.lease_expires_at is None


def test_it_refuses_completion_by_a_server_that_does_not_hold_the_lease(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    build2: Principal,
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    with pytest.raises(Conflict, match="leased to build1, not build2"):
        coordinator.queue.complete(
            job.id, status="succeeded", server="build2", fencing_token=job.fencing_token, by=build2
        )

    assert store.jobs.get_job(job.id) == job


def test_it_refuses_completion_with_a_stale_or_future_fencing_token(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    subtests: pytest.Subtests,
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    for token in (job.fencing_token - 1, job.fencing_token + 1):
        with subtests.test(token=token), pytest.raises(Conflict, match="stale fencing token"):
            coordinator.queue.complete(
                job.id, status="succeeded", server="build1", fencing_token=token, by=build1
            )

    assert store.jobs.get_job(job.id) == job


def test_it_renews_a_lease_for_its_holder(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None
    clock.advance(LEASE - 1)

    renewed = coordinator.queue.renew(
        job.id, server="build1", fencing_token=job.fencing_token, by=build1
    )

    assert renewed.lease_expires_at is not None
    assert renewed.lease_expires_at.timestamp() == clock.now().timestamp() + LEASE
    clock.advance(LEASE - 1)
    assert coordinator.queue.expire_leases() == []


def test_it_refuses_a_renewal_with_a_stale_token(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    with pytest.raises(Conflict, match="stale fencing token"):
        coordinator.queue.renew(
            job.id, server="build1", fencing_token=job.fencing_token - 1, by=build1
        )

    assert store.jobs.get_job(job.id) == job


def test_it_keeps_a_lease_that_has_not_run_out(
    coordinator: Coordinator, store: Store, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    clock.advance(LEASE)

    assert coordinator.queue.expire_leases() == []
    assert store.jobs.get_job(job.id).status == "running"


def test_it_requeues_job_when_lease_expires(
    coordinator: Coordinator, store: Store, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    clock.advance(LEASE + 1)
    expired = coordinator.queue.expire_leases()

    assert [changed.id for changed in expired] == [job.id]
    requeued = store.jobs.get_job(job.id)
    assert (requeued.status, requeued.attempt, requeued.server) == ("queued", 2, None)
    assert requeued.reason is not None
    assert "lease expired on build1" in requeued.reason
    assert claim_id(coordinator, build1) == job.id


def test_it_fails_the_job_and_blocks_dependents_after_the_last_attempt_expires(
    coordinator: Coordinator,
    store: Store,
    clock: FakeClock,
    settings: Settings,
    operator: Principal,
    build1: Principal,
) -> None:
    job = submit(coordinator, operator)
    dependent = submit(coordinator, operator, depends_on=[job.id])

    for attempt in range(1, settings.max_attempts + 1):
        claimed = claim(coordinator, build1)
        assert claimed is not None
        assert (claimed.id, claimed.attempt) == (job.id, attempt)
        clock.advance(LEASE + 1)
        coordinator.queue.expire_leases()

    failed = store.jobs.get_job(job.id)
    assert (failed.status, failed.attempt) == ("failed", settings.max_attempts)
    assert failed.reason is not None
    assert "last attempt" in failed.reason
    blocked = store.jobs.get_job(dependent.id)
    assert (blocked.status, blocked.blocked_reason) == ("blocked", f"dependency #{job.id} failed")
    assert claim(coordinator, build1) is None


def test_it_refuses_the_old_holders_late_writes_after_another_server_reclaims(
    coordinator: Coordinator,
    store: Store,
    clock: FakeClock,
    operator: Principal,
    build1: Principal,
    build2: Principal,
) -> None:
    submit(coordinator, operator)
    old = claim(coordinator, build1)
    assert old is not None
    clock.advance(LEASE + 1)
    coordinator.queue.expire_leases()
    new = claim(coordinator, build2)
    assert new is not None
    assert new.fencing_token > old.fencing_token

    with pytest.raises(Conflict):
        finish(coordinator, old, build1, "failed")
    with pytest.raises(Conflict):
        coordinator.queue.renew(old.id, server="build1", fencing_token=old.fencing_token, by=build1)

    assert store.jobs.get_job(new.id) == new


def test_it_refuses_the_stale_token_even_when_the_same_server_reclaims(
    coordinator: Coordinator, store: Store, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    old = claim(coordinator, build1)
    assert old is not None
    clock.advance(LEASE + 1)
    coordinator.queue.expire_leases()
    new = claim(coordinator, build1)
    assert new is not None

    with pytest.raises(Conflict, match="stale fencing token"):
        finish(coordinator, old, build1)

    assert store.jobs.get_job(new.id) == new
    assert finish(coordinator, new, build1).status == "succeeded"


def test_it_refuses_completion_of_a_job_that_lost_its_lease_and_is_queued(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None
    clock.advance(LEASE + 1)
    coordinator.queue.expire_leases()

    with pytest.raises(Conflict, match="is queued, not running"):
        finish(coordinator, job, build1)


def test_it_refuses_the_agents_report_on_a_job_cancelled_while_running(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None
    coordinator.queue.cancel(job.id, reason="wrong commit", by=operator)

    with pytest.raises(Conflict, match="is cancelled, not running"):
        finish(coordinator, job, build1)

    cancelled = store.jobs.get_job(job.id)
    assert (cancelled.status, cancelled.reason) == ("cancelled", "wrong commit")


def test_it_lets_an_operator_complete_whichever_lease_is_current(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    done = coordinator.queue.complete(job.id, status="failed", exit_code=2, by=operator)

    assert (done.status, done.exit_code) == ("failed", 2)
