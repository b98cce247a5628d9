"""The job queue's permissions: who may submit, claim, complete and administer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from buildcoord.errors import Forbidden, NotFound
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from store_rows import StoreState

from .queue_helpers import claim, finish, submit


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
