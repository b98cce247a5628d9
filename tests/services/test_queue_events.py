"""The job queue's events: every change recorded, with who and the states."""

from __future__ import annotations

from buildcoord.clock import FakeClock
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

from .queue_helpers import LEASE, claim, event_kinds, finish, submit


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
