"""Live agent sessions told from the change feed: work to the right agents, cancels, orders.

Real store on both backends, the real feed thread; deliveries are collected by an Inbox and
waited for with a bound. The coordinator's clock is fake: re-telling a job waits until the
test moves it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict
from buildcoord.models import Principal
from buildcoord.services.agent_sessions import SESSIONS_PER_SERVER, TELL_HOLD_SECONDS, LiveSession
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

RegisterServer = Callable[..., Principal]
QUIET = 0.5  # how long a test waits to be sure something is NOT told (five looks of the feed)


class Inbox:
    """What one session was told, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[str, dict[str, Any]]] = []

    def deliver(self, name: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.items.append((name, data))

    def of(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [data for kind, data in self.items if kind == name]

    def wait(self, name: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while len(self.of(name)) < count:
            if time.monotonic() > end:
                raise AssertionError(f"not told {name!r} {count}x within {timeout} s: {self.items}")
            time.sleep(0.02)
        return self.of(name)


Join = Callable[..., tuple[LiveSession, Inbox]]


@pytest.fixture
def join(coordinator: Coordinator, clock: FakeClock) -> Iterator[Join]:
    """Open a live session for a server; every session is closed after the test."""
    opened: list[tuple[Coordinator, LiveSession]] = []

    def open_session(server: str, *, on: Coordinator | None = None) -> tuple[LiveSession, Inbox]:
        inbox = Inbox()
        where = on or coordinator
        live = where.sessions.join(server, inbox.deliver, now=clock.now().timestamp())
        opened.append((where, live))
        return live, inbox

    yield open_session
    for where, live in opened:
        where.sessions.leave(live)


@pytest.fixture
def main_branch(coordinator: Coordinator, operator: Principal) -> str:
    """A branch agents can build."""
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=operator)
    return "main"


def test_a_queued_job_is_told_to_one_idle_agent_whose_labels_cover_it_and_to_no_other(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
) -> None:
    register_server("linux1", ["linux"])
    register_server("win1", ["windows"])
    _, linux = join("linux1")
    _, windows = join("win1")

    job = coordinator.queue.submit(main_branch, "abcdef1", labels=["linux"], by=operator)

    assert linux.wait("work") == [{"job_id": job.id}]
    time.sleep(QUIET)
    assert windows.of("work") == []


def test_a_job_is_told_to_one_agent_not_to_every_idle_one(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
) -> None:
    inboxes = []
    for index in range(5):
        register_server(f"build{index}")
        inboxes.append(join(f"build{index}")[1])

    coordinator.queue.submit(main_branch, "abcdef1", by=operator)

    deadline = time.monotonic() + 5
    while not any(inbox.of("work") for inbox in inboxes) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(QUIET)
    assert sum(len(inbox.of("work")) for inbox in inboxes) == 1


def test_jobs_an_agent_could_not_claim_are_not_told(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
) -> None:
    register_server("build1")
    _, inbox = join("build1")
    coordinator.branches.add("manual", repo="/srv/repo", command=None, by=operator)
    first = coordinator.queue.submit(main_branch, "abcdef1", by=operator)

    coordinator.queue.submit("manual", "abcdef2", by=operator)  # no build command
    coordinator.queue.submit(main_branch, "abcdef3", depends_on=[first.id], by=operator)

    inbox.wait("work")
    time.sleep(QUIET)
    assert inbox.of("work") == [{"job_id": first.id}]


def test_a_busy_agent_is_not_told_and_is_told_again_once_its_build_ends(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
    clock: FakeClock,
) -> None:
    agent = register_server("build1")
    _, inbox = join("build1")
    first = coordinator.queue.submit(main_branch, "abcdef1", by=operator)
    inbox.wait("work")
    claimed = coordinator.agents.claim("build1", by=agent)
    assert claimed is not None
    assert claimed.job.id == first.id
    time.sleep(QUIET)  # the feed saw the claim: build1 is busy

    second = coordinator.queue.submit(main_branch, "abcdef2", by=operator)
    clock.advance(TELL_HOLD_SECONDS)
    time.sleep(QUIET)
    assert inbox.of("work") == [{"job_id": first.id}]

    coordinator.queue.complete(
        first.id,
        status="succeeded",
        server="build1",
        fencing_token=claimed.job.fencing_token,
        by=agent,
    )
    clock.advance(2.0)  # the second job's next telling is due
    assert inbox.wait("work", 2)[1] == {"job_id": second.id}


def test_an_unclaimed_job_is_told_again_to_another_idle_agent(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
    clock: FakeClock,
) -> None:
    register_server("build1")
    register_server("build2")
    _, one = join("build1")
    _, two = join("build2")
    job = coordinator.queue.submit(main_branch, "abcdef1", by=operator)
    deadline = time.monotonic() + 5
    while not (one.of("work") or two.of("work")) and time.monotonic() < deadline:
        time.sleep(0.02)
    first, second = (one, two) if one.of("work") else (two, one)

    clock.advance(1.0)  # nobody claimed it: the message may have been lost

    assert second.wait("work") == [{"job_id": job.id}]
    assert len(first.of("work")) == 1


def test_a_cancel_of_a_running_build_is_told_to_its_agent_only(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
) -> None:
    agent = register_server("build1")
    register_server("build2")
    _, builder = join("build1")
    _, bystander = join("build2")
    job = coordinator.queue.submit(main_branch, "abcdef1", by=operator)
    assert coordinator.agents.claim("build1", by=agent) is not None

    coordinator.queue.cancel(job.id, reason="wrong commit", by=operator)

    assert builder.wait("cancel") == [{"job_id": job.id, "reason": "wrong commit"}]
    time.sleep(QUIET)
    assert bystander.of("cancel") == []


def test_orders_are_told_to_the_agent_they_are_for(
    coordinator: Coordinator,
    store: Store,
    register_server: RegisterServer,
    join: Join,
    clock: FakeClock,
) -> None:
    register_server("build1")
    register_server("build2")
    _, one = join("build1")
    _, two = join("build2")

    store.create_order("build1", "cleanup", {}, now=clock.now().timestamp(), actor="test")

    one.wait("orders")
    time.sleep(QUIET)
    assert two.of("orders") == []


def test_a_session_opening_is_told_the_cancels_and_orders_it_missed(
    coordinator: Coordinator,
    operator: Principal,
    store: Store,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
    clock: FakeClock,
) -> None:
    agent = register_server("build1")
    job = coordinator.queue.submit(main_branch, "abcdef1", by=operator)
    assert coordinator.agents.claim("build1", by=agent) is not None
    coordinator.queue.cancel(job.id, reason="while away", by=operator)
    store.create_order("build1", "cleanup", {}, now=clock.now().timestamp(), actor="test")

    _, inbox = join("build1")

    assert inbox.of("cancel") == [{"job_id": job.id, "reason": "while away"}]
    assert inbox.of("orders") == [{}]


def test_the_feed_runs_only_while_a_session_is_open(
    coordinator: Coordinator, register_server: RegisterServer, join: Join
) -> None:
    register_server("build1")
    assert not coordinator.feed.running
    live, _ = join("build1")
    assert coordinator.feed.running

    coordinator.sessions.leave(live)

    deadline = time.monotonic() + 2
    while coordinator.feed.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not coordinator.feed.running


def test_a_job_queued_through_another_coordinator_is_told_within_a_second(
    migrated_db_url: str,
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
    settings: Settings,
) -> None:
    register_server("build1")
    _, inbox = join("build1")
    other_store = Store.open(migrated_db_url, migrate=False)
    try:
        other = Coordinator(other_store, settings, FakeClock())
        started = time.monotonic()
        job = other.queue.submit(main_branch, "abcdef1", by=operator)

        assert inbox.wait("work", timeout=1.0) == [{"job_id": job.id}]
        assert time.monotonic() - started < 1.0
    finally:
        other_store.close()


def test_a_server_holding_too_many_live_sessions_is_refused_another(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    join: Join,
    main_branch: str,
) -> None:
    register_server("build1")
    inboxes = [join("build1")[1] for _ in range(SESSIONS_PER_SERVER)]

    with pytest.raises(Conflict, match="already holds 4 live sessions"):
        join("build1")

    job = coordinator.queue.submit(main_branch, "abcdef1", by=operator)
    deadline = time.monotonic() + 5
    while not any(inbox.of("work") for inbox in inboxes) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [data for inbox in inboxes for data in inbox.of("work")] == [{"job_id": job.id}]
