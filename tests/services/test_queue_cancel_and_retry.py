"""The job queue's cancel and retry, and unknown jobs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from buildcoord.clock import FakeClock
from buildcoord.errors import Conflict, NotFound
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from store_rows import StoreState

from .queue_helpers import claim_and_finish, claim_id, submit


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
