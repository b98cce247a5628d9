"""The job queue: order, dependencies, labels, leases and fencing, aging, bad input, permissions."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, Forbidden, InvalidInput, NotFound
from buildcoord.models import Job, Metrics, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

from .conftest import RegisterServer, StoreState

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LEASE = Settings().job_lease_seconds
AGING = Settings().priority_aging_minutes * 60


@pytest.fixture
def build1(register_server: RegisterServer) -> Principal:
    """The agent of a registered server without labels."""
    return register_server("build1")


@pytest.fixture
def build2(register_server: RegisterServer) -> Principal:
    """The agent of a second registered server without labels."""
    return register_server("build2")


def submit(coordinator: Coordinator, by: Principal, **fields: Any) -> Job:
    """Queue a job on main at COMMIT, with any field overridden."""
    branch = fields.pop("branch", "main")
    commit = fields.pop("commit", COMMIT)
    return coordinator.queue.submit(branch, commit, by=by, **fields)


def claim(coordinator: Coordinator, by: Principal) -> Job | None:
    """Claim the next job as the agent's own server."""
    assert by.server is not None
    return coordinator.queue.claim_next(by.server, by=by)


def claim_id(coordinator: Coordinator, by: Principal) -> int | None:
    """Claim the next job and return its id, or None."""
    job = claim(coordinator, by)
    return None if job is None else job.id


def finish(coordinator: Coordinator, job: Job, by: Principal, status: str = "succeeded") -> Job:
    """Complete a claimed job as its holder with its current fencing token."""
    assert job.server is not None
    return coordinator.queue.complete(
        job.id, status=status, server=job.server, fencing_token=job.fencing_token, by=by
    )


def claim_and_finish(
    coordinator: Coordinator, by: Principal, expected: int, status: str = "succeeded"
) -> Job:
    """Claim, check the claimed job is ``expected``, and complete it."""
    job = claim(coordinator, by)
    assert job is not None
    assert job.id == expected
    return finish(coordinator, job, by, status)


def event_kinds(store: Store, job_id: int) -> list[str]:
    """The kinds of events recorded for one job, in order."""
    return [event.kind for event in store.events.list_events(subject=f"job:{job_id}")]


# -- order ----------------------------------------------------------------------------------------


def test_it_claims_priority_one_before_lower_priorities(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    low = submit(coordinator, operator, priority=10)
    middle = submit(coordinator, operator, priority=5)
    high = submit(coordinator, operator, priority=1)

    claimed = [claim_id(coordinator, build1) for _ in range(4)]

    assert claimed == [high.id, middle.id, low.id, None]


def test_it_claims_jobs_of_one_priority_in_submission_order(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    ids = []
    for _ in range(4):
        ids.append(submit(coordinator, operator, priority=3).id)
        clock.advance(1)

    assert [claim_id(coordinator, build1) for _ in range(4)] == ids


def test_it_breaks_ties_of_one_instant_by_job_id(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    ids = [submit(coordinator, operator, priority=7).id for _ in range(5)]

    assert [claim_id(coordinator, build1) for _ in range(5)] == ids


# -- dependencies ---------------------------------------------------------------------------------


def test_it_holds_a_dependent_until_all_its_dependencies_succeed(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    first = submit(coordinator, operator, priority=5)
    second = submit(coordinator, operator, priority=5)
    dependent = submit(coordinator, operator, priority=1, depends_on=[first.id, second.id])

    claim_and_finish(coordinator, build1, first.id)
    running = claim(coordinator, build1)
    assert running is not None
    assert running.id == second.id
    assert claim(coordinator, build1) is None

    finish(coordinator, running, build1)

    assert claim_id(coordinator, build1) == dependent.id


def test_it_queues_a_job_whose_dependencies_already_succeeded_as_claimable(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    done = submit(coordinator, operator)
    claim_and_finish(coordinator, build1, done.id)

    dependent = submit(coordinator, operator, depends_on=[done.id])

    assert dependent.status == "queued"
    assert dependent.pending_dependencies == 0
    assert claim_id(coordinator, build1) == dependent.id


def test_it_blocks_dependents_transitively_when_a_dependency_fails(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal
) -> None:
    root = submit(coordinator, operator)
    child = submit(coordinator, operator, depends_on=[root.id])
    grandchild = submit(coordinator, operator, depends_on=[child.id])

    claim_and_finish(coordinator, build1, root.id, status="failed")

    child_now = store.jobs.get_job(child.id)
    grandchild_now = store.jobs.get_job(grandchild.id)
    assert (child_now.status, child_now.blocked_reason) == (
        "blocked",
        f"dependency #{root.id} failed",
    )
    assert grandchild_now.status == "blocked"
    assert grandchild_now.blocked_reason == (
        f"dependency #{child.id} is blocked: dependency #{root.id} failed"
    )
    assert claim(coordinator, build1) is None


def test_it_blocks_dependents_when_a_dependency_is_cancelled(
    coordinator: Coordinator, store: Store, operator: Principal
) -> None:
    root = submit(coordinator, operator)
    child = submit(coordinator, operator, depends_on=[root.id])

    coordinator.queue.cancel(root.id, by=operator)

    child_now = store.jobs.get_job(child.id)
    assert child_now.status == "blocked"
    assert child_now.blocked_reason == f"dependency #{root.id} cancelled"


def test_it_blocks_a_new_job_at_once_when_its_dependency_already_failed(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    root = submit(coordinator, operator)
    claim_and_finish(coordinator, build1, root.id, status="failed")

    dependent = submit(coordinator, operator, depends_on=[root.id])

    assert dependent.status == "blocked"
    assert dependent.blocked_reason == f"dependency #{root.id} failed"


def test_it_unblocks_dependents_when_the_failed_dependency_is_retried(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal
) -> None:
    root = submit(coordinator, operator)
    child = submit(coordinator, operator, depends_on=[root.id])
    grandchild = submit(coordinator, operator, depends_on=[child.id])
    claim_and_finish(coordinator, build1, root.id, status="failed")

    retried = coordinator.queue.retry(root.id, by=operator)

    assert (retried.status, retried.attempt) == ("queued", 2)
    for job_id in (child.id, grandchild.id):
        job = store.jobs.get_job(job_id)
        assert (job.status, job.blocked_reason) == ("queued", None)
    claim_and_finish(coordinator, build1, root.id)
    claim_and_finish(coordinator, build1, child.id)
    claim_and_finish(coordinator, build1, grandchild.id)


def test_it_keeps_a_retried_job_blocked_while_its_own_dependency_has_failed(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal
) -> None:
    root = submit(coordinator, operator)
    child = submit(coordinator, operator, depends_on=[root.id])
    claim_and_finish(coordinator, build1, root.id, status="failed")
    coordinator.queue.cancel(child.id, by=operator)

    retried = coordinator.queue.retry(child.id, by=operator)

    assert retried.status == "blocked"
    assert retried.blocked_reason == f"dependency #{root.id} failed"
    coordinator.queue.retry(root.id, by=operator)
    assert store.jobs.get_job(child.id).status == "queued"


def test_it_refuses_an_unknown_dependency_and_changes_nothing(
    coordinator: Coordinator, store: Store, operator: Principal, store_state: StoreState
) -> None:
    existing = submit(coordinator, operator)
    jobs_before = sum(store.jobs.count_by_status().values())
    events_before = len(store.events.list_events(limit=10_000))
    before = store_state()

    with pytest.raises(NotFound, match="unknown dependency"):
        submit(coordinator, operator, depends_on=[existing.id, 99])

    assert sum(store.jobs.count_by_status().values()) == jobs_before
    assert len(store.events.list_events(limit=10_000)) == events_before
    assert store_state() == before


def test_it_refuses_a_dependency_on_the_next_job_id_so_no_cycle_can_form(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    first = submit(coordinator, operator)
    next_id = first.id + 1
    before = store_state()

    with pytest.raises(NotFound, match=f"job {next_id} does not exist"):
        submit(coordinator, operator, depends_on=[next_id])

    assert store_state() == before
    # The id it would have named goes to the next job, which therefore depends only on older ids.
    assert submit(coordinator, operator).id == next_id


# -- labels ---------------------------------------------------------------------------------------


def test_it_does_not_give_a_job_to_a_server_without_its_labels(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    plain = register_server("plain")
    submit(coordinator, operator, labels=["mvn"])

    assert claim(coordinator, plain) is None


def test_it_gives_a_job_to_a_server_with_all_its_labels(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    maven = register_server("maven", labels=["mvn", "os=debian"])
    job = submit(coordinator, operator, labels=["mvn"])

    assert claim_id(coordinator, maven) == job.id


def test_a_job_pinned_to_a_server_goes_to_that_server_without_any_labels_set(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    job = submit(coordinator, operator, labels=["server=build1"])

    assert claim(coordinator, build2) is None
    assert claim_id(coordinator, build1) == job.id


def test_an_agent_cannot_report_a_server_label_to_take_another_servers_job(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    submit(coordinator, operator, labels=["server=build2"])

    with pytest.raises(InvalidInput, match="server="):
        coordinator.servers.heartbeat(
            "build1", metrics=Metrics(), labels=["server=build2"], by=build1
        )

    assert claim(coordinator, build1) is None


def test_labels_an_agent_reports_satisfy_a_jobs_requirements(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    job = submit(coordinator, operator, labels=["mvn"])
    coordinator.servers.heartbeat("build1", metrics=Metrics(), labels=["mvn"], by=build1)

    assert claim_id(coordinator, build1) == job.id


def test_a_job_may_need_operator_and_reported_labels_together(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    build1 = register_server("build1", labels=["os=debian"])
    job = submit(coordinator, operator, labels=["mvn", "os=debian", "server=build1"])
    coordinator.servers.heartbeat("build1", metrics=Metrics(), labels=["mvn"], by=build1)

    assert claim_id(coordinator, build1) == job.id


def test_it_skips_past_many_jobs_a_server_cannot_run_to_one_it_can(
    coordinator: Coordinator, operator: Principal, register_server: RegisterServer
) -> None:
    plain = register_server("plain")
    for _ in range(40):  # more than one claim batch
        submit(coordinator, operator, priority=1, labels=["mvn"])
    runnable = submit(coordinator, operator, priority=10)

    assert claim_id(coordinator, plain) == runnable.id


# -- leases and fencing ---------------------------------------------------------------------------


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


# -- cancel and retry -----------------------------------------------------------------------------


def test_it_refuses_to_cancel_a_finished_job(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal
) -> None:
    job = submit(coordinator, operator)
    done = claim_and_finish(coordinator, build1, job.id)

    with pytest.raises(Conflict, match="already succeeded"):
        coordinator.queue.cancel(job.id, by=operator)

    assert store.jobs.get_job(job.id) == done


def test_it_refuses_to_retry_a_job_that_has_not_failed(
    coordinator: Coordinator, store: Store, operator: Principal
) -> None:
    job = submit(coordinator, operator)

    with pytest.raises(Conflict, match="only failed or cancelled jobs are retried"):
        coordinator.queue.retry(job.id, by=operator)

    assert store.jobs.get_job(job.id) == job


def test_it_gives_a_retried_job_a_fresh_place_in_the_queue(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    old = submit(coordinator, operator)
    coordinator.queue.cancel(old.id, by=operator)
    clock.advance(1)
    waiting = submit(coordinator, operator)
    clock.advance(1)

    retried = coordinator.queue.retry(old.id, by=operator)

    assert retried.queued_at == clock.now()
    assert [claim_id(coordinator, build1) for _ in range(2)] == [waiting.id, old.id]


def test_it_reports_an_unknown_job_as_not_found(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: coordinator.queue.get(42, by=operator),
        "cancel": lambda: coordinator.queue.cancel(42, by=operator),
        "retry": lambda: coordinator.queue.retry(42, by=operator),
        "complete": lambda: coordinator.queue.complete(42, status="succeeded", by=operator),
    }

    for action, call in calls.items():
        with subtests.test(action=action), pytest.raises(NotFound, match="job 42 does not exist"):
            call()

    assert store_state() == before


# -- priority aging -------------------------------------------------------------------------------


def test_it_claims_a_job_that_waited_its_priority_gap_in_aging_steps_before_a_fresh_one(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    # Effective priority 5 - waited/30 min reaches 1 after 4 x 30 min; ties go to the older job.
    old = submit(coordinator, operator, priority=5)
    clock.advance(4 * AGING)
    fresh = submit(coordinator, operator, priority=1)

    assert [claim_id(coordinator, build1) for _ in range(2)] == [old.id, fresh.id]


def test_it_claims_a_fresh_higher_priority_job_before_one_that_has_not_aged_enough(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    old = submit(coordinator, operator, priority=5)
    clock.advance(4 * AGING - 1)
    fresh = submit(coordinator, operator, priority=1)

    assert [claim_id(coordinator, build1) for _ in range(2)] == [fresh.id, old.id]


def test_it_orders_strictly_by_priority_when_aging_is_off(
    store: Store, clock: FakeClock, operator: Principal
) -> None:
    strict = Coordinator(store, Settings(priority_aging_minutes=0), clock)
    strict.servers.register("build1", by=operator)
    build1 = Principal("agent", "agent build1", server="build1")
    old = submit(strict, operator, priority=5)
    clock.advance(30 * 24 * 3600)
    fresh = submit(strict, operator, priority=1)
    newer_same_priority = submit(strict, operator, priority=5)

    claimed = [claim_id(strict, build1) for _ in range(3)]

    assert claimed == [fresh.id, old.id, newer_same_priority.id]


def test_it_reranks_waiting_jobs_when_the_aging_setting_changes(
    coordinator: Coordinator, store: Store, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    coordinator.queue.apply_aging_policy()
    old = submit(coordinator, operator, priority=5)
    clock.advance(10 * AGING)
    fresh = submit(coordinator, operator, priority=1)
    strict = Coordinator(store, replace(coordinator.settings, priority_aging_minutes=0), clock)

    assert strict.queue.apply_aging_policy() == 2

    assert [claim_id(strict, build1) for _ in range(2)] == [fresh.id, old.id]


def test_it_leaves_ranks_alone_when_the_aging_setting_is_unchanged(
    coordinator: Coordinator, store: Store, operator: Principal
) -> None:
    coordinator.queue.apply_aging_policy()
    submit(coordinator, operator)
    again = Coordinator(store, coordinator.settings, coordinator.clock)

    assert again.queue.apply_aging_policy() == 0


def test_it_turns_aging_back_on_for_jobs_queued_under_strict_priority(
    store: Store, clock: FakeClock, operator: Principal
) -> None:
    strict = Coordinator(store, Settings(priority_aging_minutes=0), clock)
    strict.queue.apply_aging_policy()
    strict.servers.register("build1", by=operator)
    build1 = Principal("agent", "agent build1", server="build1")
    old = submit(strict, operator, priority=5)
    clock.advance(10 * AGING)
    fresh = submit(strict, operator, priority=1)
    aging = Coordinator(store, Settings(), clock)

    assert aging.queue.apply_aging_policy() == 2

    assert [claim_id(aging, build1) for _ in range(2)] == [old.id, fresh.id]


# -- bad input ------------------------------------------------------------------------------------

BAD_PRIORITIES: list[Any] = [
    0,
    11,
    -1,
    "5",
    True,
    5.0,
]  # None means "the branch's priority, else 5"
BAD_BRANCHES = [
    "a..b",
    "x.lock",
    "feature/x.lock",
    "-x",
    "a b",
    "@",
    "",
    "a~1",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "a\\b",
    "a@{b",
    "a/",
    "a.",
    "/a",
    "a//b",
    ".hidden",
    "a/.b",
    "tab\there",
    "x" * 256,
]
GOOD_BRANCHES = ["main", "feature/login-form", "release-1.2", "user@host", "a.b/c_d", "x" * 255]
BAD_COMMITS = ["", "abc123", "0" * 41, "g123456", "0123456 ", "01234-6789", "0x12345"]
BAD_DEPENDENCIES: list[Any] = [0, -3, True, "1", 1.0]
BAD_LABELS = ["has space", "a,b", "-x", "é"]


def test_it_refuses_a_priority_outside_one_to_ten_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()

    for priority in BAD_PRIORITIES:
        with subtests.test(priority=priority), pytest.raises(InvalidInput, match="priority"):
            submit(coordinator, operator, priority=priority)

    assert store_state() == before


def test_it_refuses_a_branch_name_git_rejects_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()

    for branch in BAD_BRANCHES:
        with subtests.test(branch=branch), pytest.raises(InvalidInput, match="branch name"):
            submit(coordinator, operator, branch=branch)

    assert store_state() == before


def test_it_accepts_a_branch_name_git_accepts(
    coordinator: Coordinator, operator: Principal, subtests: pytest.Subtests
) -> None:
    for branch in GOOD_BRANCHES:
        with subtests.test(branch=branch):
            assert submit(coordinator, operator, branch=branch).branch == branch


def test_it_refuses_a_commit_that_is_not_7_to_40_hex_digits_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()

    for commit in BAD_COMMITS:
        with subtests.test(commit=commit), pytest.raises(InvalidInput, match="invalid commit"):
            submit(coordinator, operator, commit=commit)

    assert store_state() == before


def test_it_accepts_commits_of_7_and_40_hex_digits_and_stores_them_in_lower_case(
    coordinator: Coordinator, operator: Principal
) -> None:
    assert submit(coordinator, operator, commit="ABCDEF0").commit == "abcdef0"
    assert submit(coordinator, operator, commit="F" * 40).commit == "f" * 40


def test_it_refuses_a_dependency_that_is_not_a_job_id_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    submit(coordinator, operator)
    before = store_state()

    for dependency in BAD_DEPENDENCIES:
        with subtests.test(dependency=dependency), pytest.raises(InvalidInput, match="dependency"):
            submit(coordinator, operator, depends_on=[dependency])

    assert store_state() == before


def test_it_refuses_a_malformed_label_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()

    for label in BAD_LABELS:
        with subtests.test(label=label), pytest.raises(InvalidInput, match="invalid label"):
            submit(coordinator, operator, labels=[label])

    assert store_state() == before


def test_it_refuses_to_complete_with_a_status_other_than_succeeded_or_failed(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    subtests: pytest.Subtests,
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    for status in ["cancelled", "queued", "ok", ""]:
        with subtests.test(status=status), pytest.raises(InvalidInput, match="succeeded or failed"):
            finish(coordinator, job, build1, status)

    assert store.jobs.get_job(job.id) == job


def test_it_refuses_to_complete_with_a_duration_beyond_a_week(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    subtests: pytest.Subtests,
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    for duration in [7 * 24 * 3600 + 0.5, 1e12, 1e308, math.inf, math.nan, -1.0]:
        with subtests.test(duration=duration), pytest.raises(InvalidInput, match="duration"):
            coordinator.queue.complete(
                job.id,
                status="succeeded",
                duration=duration,
                server="build1",
                fencing_token=job.fencing_token,
                by=build1,
            )

    assert store.jobs.get_job(job.id) == job


# -- permissions ----------------------------------------------------------------------------------


def test_it_forbids_an_agent_to_claim_as_another_server(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    build2: Principal,
) -> None:
    job = submit(coordinator, operator)

    with pytest.raises(Forbidden):
        coordinator.queue.claim_next("build2", by=build1)

    assert store.jobs.get_job(job.id) == job


def test_it_forbids_an_agent_to_complete_without_its_fencing_token(
    coordinator: Coordinator, store: Store, operator: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    with pytest.raises(Forbidden, match="fencing token"):
        coordinator.queue.complete(job.id, status="succeeded", server="build1", by=build1)

    assert store.jobs.get_job(job.id) == job


def test_it_forbids_an_agent_to_complete_another_servers_job(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    build1: Principal,
    build2: Principal,
) -> None:
    submit(coordinator, operator)
    job = claim(coordinator, build1)
    assert job is not None

    with pytest.raises(Forbidden):
        finish(coordinator, job, build2)

    assert store.jobs.get_job(job.id) == job


def test_it_forbids_a_read_principal_to_submit(
    coordinator: Coordinator, reader: Principal, store_state: StoreState
) -> None:
    before = store_state()

    with pytest.raises(Forbidden):
        submit(coordinator, reader)

    assert store_state() == before


def test_it_forbids_an_agent_to_administer_the_queue(
    coordinator: Coordinator,
    operator: Principal,
    build1: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    job = submit(coordinator, operator)
    coordinator.queue.cancel(job.id, by=operator)
    before = store_state()
    calls: dict[str, Callable[[], object]] = {
        "submit": lambda: submit(coordinator, build1),
        "cancel": lambda: coordinator.queue.cancel(job.id, by=build1),
        "retry": lambda: coordinator.queue.retry(job.id, by=build1),
    }

    for action, call in calls.items():
        with subtests.test(action=action), pytest.raises(Forbidden):
            call()

    assert store_state() == before


def test_it_forbids_a_read_principal_to_claim(
    coordinator: Coordinator, operator: Principal, reader: Principal, build1: Principal
) -> None:
    submit(coordinator, operator)

    with pytest.raises(Forbidden):
        coordinator.queue.claim_next("build1", by=reader)


def test_it_refuses_a_claim_for_an_unregistered_server(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    submit(coordinator, operator)
    before = store_state()

    with pytest.raises(NotFound, match="server ghost does not exist"):
        coordinator.queue.claim_next("ghost", by=operator)

    assert store_state() == before


# -- events ---------------------------------------------------------------------------------------


def test_it_records_an_event_for_every_change_of_a_job(
    coordinator: Coordinator, store: Store, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    job = submit(coordinator, operator)
    claim(coordinator, build1)
    clock.advance(LEASE + 1)
    coordinator.queue.expire_leases()
    claimed = claim(coordinator, build1)
    assert claimed is not None
    finish(coordinator, claimed, build1, "failed")
    coordinator.queue.retry(job.id, by=operator)
    coordinator.queue.cancel(job.id, by=operator)

    assert event_kinds(store, job.id) == [
        "job.submitted",
        "job.claimed",
        "job.lease_expired",
        "job.claimed",
        "job.failed",
        "job.retried",
        "job.cancelled",
    ]


def test_it_records_who_changed_a_job_and_the_states_before_and_after(
    coordinator: Coordinator, store: Store, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    job = submit(coordinator, operator)
    claimed = claim(coordinator, build1)
    assert claimed is not None

    finish(coordinator, claimed, build1)

    submitted, claim_event, succeeded = store.events.list_events(subject=f"job:{job.id}")
    assert submitted.actor == "operator:admin"
    assert submitted.after is not None
    assert submitted.after["status"] == "queued"
    assert claim_event.actor == "agent:build1"
    assert claim_event.before == {"status": "queued"}
    assert claim_event.after is not None
    assert claim_event.after["server"] == "build1"
    assert succeeded.actor == "agent:build1"
    assert succeeded.before == {"status": "running", "server": "build1"}
    assert succeeded.after is not None
    assert succeeded.after["status"] == "succeeded"
    assert succeeded.at == clock.now()


def test_it_records_blocking_and_unblocking_of_dependents_as_events(
    coordinator: Coordinator, store: Store, operator: Principal
) -> None:
    root = submit(coordinator, operator)
    child = submit(coordinator, operator, depends_on=[root.id])

    coordinator.queue.cancel(root.id, by=operator)
    coordinator.queue.retry(root.id, by=operator)

    assert event_kinds(store, child.id) == ["job.submitted", "job.blocked", "job.unblocked"]
    blocked = store.events.list_events(subject=f"job:{child.id}")[1]
    assert blocked.after == {"status": "blocked", "reason": f"dependency #{root.id} cancelled"}
