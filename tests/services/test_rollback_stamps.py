"""Success tags of the rollback registry: one per success, stamped at (or just after) the finish.

The concurrent tests finish builds from threads on the real store, so on PostgreSQL the
rollback hooks of one second really overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from buildcoord.clock import FakeClock
from buildcoord.models import Job, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.rollback import STAMP_EXAMPLE, STAMP_FORMAT

from .conftest import RegisterServer

SIMULTANEOUS = 20


def stamp_of(tag: str | None) -> datetime:
    """The UTC second a success tag names."""
    assert tag is not None
    return datetime.strptime(tag[-len(STAMP_EXAMPLE) :], STAMP_FORMAT).replace(tzinfo=UTC)


def tag_stamp(coordinator: Coordinator, job: Job) -> datetime:
    """The UTC second of the success tag the registry holds for a job."""
    registry = coordinator.store.rollback.list_good(include_removed=True, limit=None)
    good = next((entry for entry in registry if entry.job_id == job.id), None)
    assert good is not None
    return stamp_of(good.tag)


def second_of(job: Job) -> datetime:
    """The UTC second a job finished in."""
    assert job.finished_at is not None
    return job.finished_at.astimezone(UTC).replace(microsecond=0)


Start = Callable[..., list[tuple[Job, Principal]]]


@pytest.fixture
def start(coordinator: Coordinator, operator: Principal, register_server: RegisterServer) -> Start:
    """Submit and claim ``count`` builds of a branch, one per new server, ready to finish."""
    servers = iter(range(1_000))

    def run(count: int, branch: str = "main") -> list[tuple[Job, Principal]]:
        if coordinator.store.branches.find_branch(branch) is None:
            coordinator.branches.add(branch, repo="/nowhere", command="make", by=operator)
        started = []
        for number in range(count):
            agent = register_server(f"build{next(servers)}")
            coordinator.queue.submit(branch, f"{number + 1:040x}", by=operator)
            claimed = coordinator.queue.claim_next(agent.server or "", by=agent)
            assert claimed is not None
            started.append((claimed, agent))
        return started

    return run


def succeed(coordinator: Coordinator, job: Job, agent: Principal) -> Job:
    """Report a claimed build as succeeded, as its agent does (the rollback hook runs)."""
    return coordinator.queue.complete(
        job.id,
        status="succeeded",
        exit_code=0,
        server=agent.server,
        fencing_token=job.fencing_token,
        by=agent,
    )


def succeed_together(coordinator: Coordinator, claimed: list[tuple[Job, Principal]]) -> list[Job]:
    """Report every claimed build as succeeded at once, one thread each, on the real store."""
    barrier = threading.Barrier(len(claimed))
    finished: list[Job] = []
    failures: list[BaseException] = []

    def finish(job: Job, agent: Principal) -> None:
        try:
            barrier.wait(timeout=30)
            finished.append(succeed(coordinator, job, agent))
        except BaseException as error:  # raised again below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=finish, args=pair) for pair in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    return finished


def test_simultaneous_successes_of_a_branch_each_get_their_own_tag_near_the_finish(
    coordinator: Coordinator,
    operator: Principal,
    clock: FakeClock,
    start: Start,
) -> None:
    claimed = start(SIMULTANEOUS)
    clock.advance(0.5)  # every build finishes in this same second
    finished = succeed_together(coordinator, claimed)
    goods = coordinator.rollback.list_builds("main", limit=100, by=operator)
    assert len(goods) == SIMULTANEOUS
    assert len({good.tag for good in goods}) == SIMULTANEOUS
    finish_of = {job.id: second_of(job) for job in finished}
    for good in goods:
        ahead = stamp_of(good.tag) - finish_of[good.job_id]
        assert timedelta(0) <= ahead <= timedelta(seconds=SIMULTANEOUS - 1)


def test_successes_colliding_in_one_second_take_the_next_seconds_in_turn(
    coordinator: Coordinator,
    clock: FakeClock,
    start: Start,
) -> None:
    claimed = start(4)
    clock.advance(0.5)
    jobs = [succeed(coordinator, job, agent) for job, agent in claimed]
    stamps = [tag_stamp(coordinator, job) for job in jobs]
    finish = second_of(jobs[0])
    assert stamps == [finish + timedelta(seconds=ahead) for ahead in range(4)]


def test_a_success_keeps_its_own_second_when_only_later_seconds_are_taken(
    coordinator: Coordinator,
    clock: FakeClock,
    start: Start,
) -> None:
    (early, early_agent), (late, late_agent) = start(2)
    clock.advance(60)
    late_done = succeed(coordinator, late, late_agent)
    clock.advance(-60)  # a build that finished a minute earlier is reported after it
    early_done = succeed(coordinator, early, early_agent)
    assert tag_stamp(coordinator, early_done) == second_of(early_done)
    assert tag_stamp(coordinator, late_done) == second_of(late_done)


def test_simultaneous_successes_of_branches_whose_tags_read_alike_never_share_a_tag(
    coordinator: Coordinator, operator: Principal, clock: FakeClock, start: Start
) -> None:
    # team/x and team-x both tag as build-success-team-x-<stamp>.
    claimed = start(SIMULTANEOUS // 2, "team/x") + start(SIMULTANEOUS // 2, "team-x")
    clock.advance(0.5)
    succeed_together(coordinator, claimed)
    goods = coordinator.rollback.list_builds(limit=100, by=operator)
    assert len(goods) == SIMULTANEOUS
    assert len({good.tag for good in goods}) == SIMULTANEOUS
