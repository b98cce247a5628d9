"""The job queue's order: priority, submission order, ties, and priority aging."""

from __future__ import annotations

from dataclasses import replace

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

from .queue_helpers import AGING, claim_id, submit

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
