"""Changing a waiting job's priority: it moves in the claim order, keeps its time in the
queue, is recorded as an event, and only operators may do it, only while the job waits."""

from __future__ import annotations

import pytest

from buildcoord.clock import FakeClock
from buildcoord.errors import Conflict, Forbidden, InvalidInput
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator

from .queue_helpers import claim_id, submit


def test_raising_a_queued_jobs_priority_moves_it_ahead_in_the_claim_order(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    first = submit(coordinator, operator, priority=5)
    clock.advance(1)
    second = submit(coordinator, operator, priority=5)

    changed = coordinator.queue.set_priority(second.id, 1, by=operator)

    assert changed.priority == 1
    assert [claim_id(coordinator, build1) for _ in range(2)] == [second.id, first.id]


def test_a_new_priority_keeps_the_jobs_time_in_the_queue_among_equals(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build1: Principal
) -> None:
    early = submit(coordinator, operator, priority=7)
    clock.advance(1)
    late = submit(coordinator, operator, priority=3)

    coordinator.queue.set_priority(early.id, 3, by=operator)

    assert [claim_id(coordinator, build1) for _ in range(2)] == [early.id, late.id]


def test_a_priority_change_is_recorded_as_an_event(
    coordinator: Coordinator, operator: Principal
) -> None:
    job = submit(coordinator, operator, priority=5)

    coordinator.queue.set_priority(job.id, 2, by=operator)

    [event] = [
        event
        for event in coordinator.system.events(subject=f"job:{job.id}", by=operator)
        if event.kind == "job.reprioritized"
    ]
    assert (event.before, event.after) == ({"priority": 5}, {"priority": 2})


def test_a_running_job_keeps_its_priority(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    job = submit(coordinator, operator, priority=5)
    assert claim_id(coordinator, build1) == job.id

    with pytest.raises(Conflict, match="running"):
        coordinator.queue.set_priority(job.id, 1, by=operator)

    assert coordinator.queue.get(job.id, by=operator).priority == 5


@pytest.mark.parametrize("priority", [0, 11, -1])
def test_a_priority_outside_one_to_ten_is_refused(
    coordinator: Coordinator, operator: Principal, priority: int
) -> None:
    job = submit(coordinator, operator, priority=5)

    with pytest.raises(InvalidInput, match="priority"):
        coordinator.queue.set_priority(job.id, priority, by=operator)


def test_only_operators_change_a_priority(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    job = submit(coordinator, operator, priority=5)

    with pytest.raises(Forbidden):
        coordinator.queue.set_priority(job.id, 1, by=build1)
    with pytest.raises(Forbidden):
        coordinator.queue.set_priority(job.id, 1, by=Principal("read", "viewer"))
