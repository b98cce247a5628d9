"""The job queue's dependencies: holding, blocking, unblocking, and refusing bad ones."""

from __future__ import annotations

import pytest

from buildcoord.errors import NotFound
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from store_rows import StoreState

from .queue_helpers import claim, claim_and_finish, claim_id, finish, submit


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
