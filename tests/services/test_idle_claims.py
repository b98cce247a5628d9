"""A claim that finds nothing is a read: on SQLite it never waits for, or takes, the write lock.

Idle agents claim over and over; if each of those claims were a write transaction, they would
queue behind every real write for SQLite's one write lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import NotFound
from buildcoord.models import Job, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from sql_log import logged_statements

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OPERATOR = Principal("operator", "admin")
AGENT = Principal("agent", "agent build1", server="build1")


@pytest.fixture
def sqlite_store(migrated_sqlite_file: Path, tmp_path: Path) -> Iterator[Store]:
    """A migrated store on a SQLite file of this test's own."""
    target = tmp_path / "buildcoord.db"
    target.write_bytes(migrated_sqlite_file.read_bytes())
    store = Store.open(f"sqlite:///{target}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def coordinator(sqlite_store: Store) -> Coordinator:
    """Every service over the SQLite store, with build1 registered (labels: linux)."""
    coordinator = Coordinator(sqlite_store, Settings(), FakeClock())
    coordinator.servers.register("build1", ["linux"], by=OPERATOR)
    return coordinator


def _queue_unclaimable_jobs(coordinator: Coordinator) -> None:
    """Queue jobs build1 may not take: one needing a label it lacks, one of an unbuildable
    branch (agents skip those)."""
    coordinator.branches.add("main", repo="/srv/repo", command="make", by=OPERATOR)
    coordinator.branches.add("manual", repo="/srv/repo", command=None, by=OPERATOR)
    coordinator.queue.submit("main", COMMIT, labels=["gpu"], by=OPERATOR)
    coordinator.queue.submit("manual", COMMIT, by=OPERATOR)


def _claim_while_the_write_lock_is_held(coordinator: Coordinator, path: str) -> list[object]:
    """Claim as build1's agent in a thread while another connection holds the write lock;
    return what the claim answered within 5 s (nothing if it is still waiting)."""
    answers: list[object] = []

    def claim() -> None:
        try:
            answers.append(coordinator.agents.claim("build1", by=AGENT))
        except Exception as error:  # the answer, whatever it is, is what the test checks
            answers.append(error)

    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        thread = threading.Thread(target=claim)
        thread.start()
        thread.join(timeout=5)
        seen = list(answers)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    thread.join()
    return seen


def test_an_idle_agents_claim_answers_at_once_while_another_writer_holds_the_lock(
    coordinator: Coordinator, sqlite_store: Store
) -> None:
    _queue_unclaimable_jobs(coordinator)
    path = sqlite_store.engine.url.database
    assert path is not None

    assert _claim_while_the_write_lock_is_held(coordinator, path) == [None]


def test_a_claim_that_finds_nothing_begins_no_write_transaction(
    coordinator: Coordinator, sqlite_store: Store
) -> None:
    with logged_statements(sqlite_store.engine) as empty_queue:
        assert coordinator.agents.claim("build1", by=AGENT) is None
    _queue_unclaimable_jobs(coordinator)
    with logged_statements(sqlite_store.engine) as unclaimable:
        assert coordinator.agents.claim("build1", by=AGENT) is None

    for statements in (empty_queue, unclaimable):
        assert statements
        assert [text for text, _ in statements if text.startswith("BEGIN")] == []
        assert [text for text, _ in statements if not text.startswith("SELECT")] == []


def test_a_claim_that_finds_a_job_leases_it_in_a_write_transaction(
    coordinator: Coordinator, sqlite_store: Store
) -> None:
    _queue_unclaimable_jobs(coordinator)
    queued = coordinator.queue.submit("main", COMMIT[::-1], labels=["linux"], by=OPERATOR)

    with logged_statements(sqlite_store.engine) as statements:
        assignment = coordinator.agents.claim("build1", by=AGENT)

    assert assignment is not None
    job: Job = assignment.job
    assert (job.id, job.status, job.server) == (queued.id, "running", "build1")
    assert [text for text, _ in statements if text.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]


def test_a_claim_by_an_unknown_server_is_refused_without_the_write_lock(
    coordinator: Coordinator, sqlite_store: Store
) -> None:
    stranger = Principal("operator", "admin")

    with logged_statements(sqlite_store.engine) as statements, pytest.raises(NotFound):
        coordinator.queue.claim_next("nobody", by=stranger)

    assert [text for text, _ in statements if text.startswith("BEGIN")] == []
