"""A hypothesis state machine drives the real queue and checks it against a small model.

The model is the queue's specification in a few lines: claim order is the lowest
``claim_rank`` among queued jobs whose dependencies all succeeded and whose labels the server
has (ties by id); a finished-without-success dependency blocks its dependents; a retry
unblocks them; an expired lease requeues (attempt + 1) or, on the last attempt, fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.queue import claim_rank
from buildcoord.store import Store
from postgres_cluster import PostgresServer

OPERATOR = Principal("operator", "admin")
SERVER_LABELS: dict[str, frozenset[str]] = {
    "build1": frozenset(),
    "build2": frozenset({"mvn"}),
    "build3": frozenset({"mvn", "gpu"}),
}
LABEL_SETS: list[tuple[str, ...]] = [(), (), ("mvn",), ("gpu",), ("gpu", "mvn")]
SETTINGS = Settings()
LEASE = SETTINGS.job_lease_seconds
AGING = SETTINGS.priority_aging_minutes * 60
UNRUNNABLE = frozenset({"failed", "cancelled", "blocked"})
UNFINISHED = frozenset({"queued", "blocked", "running"})

DatabaseFactory = Callable[[], AbstractContextManager[str]]


@dataclass
class ModelJob:
    """What the model believes about one job."""

    id: int
    priority: int
    depends_on: tuple[int, ...]
    labels: frozenset[str]
    rank: float
    status: str = "queued"
    server: str | None = None
    token: int = 0
    attempt: int = 1
    max_attempts: int = SETTINGS.max_attempts
    lease_until: float = 0.0


class QueueMachine(RuleBasedStateMachine):
    """Submit, claim, complete, cancel, expire and retry against a real store."""

    open_database: DatabaseFactory

    def __init__(self) -> None:
        super().__init__()
        self.resources = ExitStack()
        url = self.resources.enter_context(type(self).open_database())
        self.store = Store.open(url)
        self.resources.callback(self.store.close)
        self.clock = FakeClock()
        self.coordinator = Coordinator(self.store, SETTINGS, self.clock)
        for name, labels in SERVER_LABELS.items():
            self.coordinator.servers.register(name, sorted(labels), by=OPERATOR)
        self.jobs: dict[int, ModelJob] = {}

    def teardown(self) -> None:
        """Close the store and drop the example's database."""
        self.resources.close()

    # -- model ------------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now().timestamp()

    def ids_with(self, statuses: frozenset[str]) -> list[int]:
        return sorted(job.id for job in self.jobs.values() if job.status in statuses)

    def runnable_after_dependencies(self, job: ModelJob) -> bool:
        return not any(self.jobs[dep].status in UNRUNNABLE for dep in job.depends_on)

    def expected_claim(self, server: str) -> int | None:
        claimable = [
            job
            for job in self.jobs.values()
            if job.status == "queued"
            and all(self.jobs[dep].status == "succeeded" for dep in job.depends_on)
            and job.labels <= SERVER_LABELS[server]
        ]
        if not claimable:
            return None
        return min(claimable, key=lambda job: (job.rank, job.id)).id

    def settle_dependents(self) -> None:
        """Block queued jobs behind a failed/cancelled/blocked dependency, unblock the others."""
        for job_id in sorted(self.jobs):  # dependencies always have smaller ids
            job = self.jobs[job_id]
            if job.status == "queued" and not self.runnable_after_dependencies(job):
                job.status = "blocked"
            elif job.status == "blocked" and self.runnable_after_dependencies(job):
                job.status = "queued"

    # -- rules ------------------------------------------------------------------------------------

    @rule(
        priority=st.integers(1, 10),
        picks=st.lists(st.integers(0, 1_000), max_size=3),
        labels=st.sampled_from(LABEL_SETS),
    )
    def submit(self, priority: int, picks: list[int], labels: tuple[str, ...]) -> None:
        existing = sorted(self.jobs)
        depends_on = sorted({existing[pick % len(existing)] for pick in picks}) if existing else []
        job = self.coordinator.queue.submit(
            "main",
            "abcdef0",
            priority=priority,
            depends_on=depends_on,
            labels=labels,
            by=OPERATOR,
        )
        assert job.id not in self.jobs
        model = ModelJob(
            id=job.id,
            priority=priority,
            depends_on=tuple(depends_on),
            labels=frozenset(labels),
            rank=claim_rank(priority, self.now(), AGING),
        )
        if not self.runnable_after_dependencies(model):
            model.status = "blocked"
        self.jobs[job.id] = model

    @rule(server=st.sampled_from(sorted(SERVER_LABELS)))
    def claim(self, server: str) -> None:
        expected = self.expected_claim(server)
        job = self.coordinator.queue.claim_next(server, by=OPERATOR)
        assert (None if job is None else job.id) == expected
        if job is None:
            return
        model = self.jobs[job.id]
        assert model.status == "queued", f"job {job.id} was claimed while {model.status}"
        model.status, model.server, model.token = "running", server, model.token + 1
        model.lease_until = self.now() + LEASE
        assert (job.server, job.fencing_token, job.attempt) == (server, model.token, model.attempt)

    @precondition(lambda self: self.ids_with(frozenset({"running"})))
    @rule(data=st.data(), outcome=st.sampled_from(["succeeded", "failed"]))
    def complete(self, data: st.DataObject, outcome: str) -> None:
        job_id = data.draw(st.sampled_from(self.ids_with(frozenset({"running"}))))
        model = self.jobs[job_id]
        self.coordinator.queue.complete(
            job_id,
            status=outcome,
            server=model.server,
            fencing_token=model.token,
            by=Principal("agent", f"agent {model.server}", server=model.server),
        )
        model.status = outcome
        self.settle_dependents()

    @precondition(lambda self: self.ids_with(frozenset({"running"})))
    @rule(data=st.data(), late_by=st.integers(1, 3))
    def complete_with_a_stale_token(self, data: st.DataObject, late_by: int) -> None:
        job_id = data.draw(st.sampled_from(self.ids_with(frozenset({"running"}))))
        model = self.jobs[job_id]
        with pytest.raises(Conflict):
            self.coordinator.queue.complete(
                job_id, status="succeeded", fencing_token=model.token - late_by, by=OPERATOR
            )

    @precondition(lambda self: self.ids_with(UNFINISHED))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids_with(UNFINISHED)))
        self.coordinator.queue.cancel(job_id, by=OPERATOR)
        self.jobs[job_id].status = "cancelled"
        self.settle_dependents()

    @precondition(lambda self: self.ids_with(frozenset({"failed", "cancelled"})))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids_with(frozenset({"failed", "cancelled"}))))
        job = self.coordinator.queue.retry(job_id, by=OPERATOR)
        model = self.jobs[job_id]
        model.max_attempts = max(model.max_attempts, model.attempt + 1)
        model.attempt += 1
        model.server = None
        model.rank = claim_rank(model.priority, self.now(), AGING)
        model.status = "queued" if self.runnable_after_dependencies(model) else "blocked"
        assert (job.status, job.attempt) == (model.status, model.attempt)
        self.settle_dependents()

    @rule(seconds=st.sampled_from([1, 60, 600, 1_800, 3_600, 4 * 3_600]))
    def tick(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(seconds=st.sampled_from([LEASE // 2, LEASE + 1]))
    def expire(self, seconds: float) -> None:
        self.clock.advance(seconds)
        now = self.now()
        due = sorted(
            job.id
            for job in self.jobs.values()
            if job.status == "running" and job.lease_until < now
        )
        changed = self.coordinator.queue.expire_leases()
        assert sorted(job.id for job in changed) == due
        for job_id in due:
            model = self.jobs[job_id]
            model.server = None
            if model.attempt < model.max_attempts:
                model.status, model.attempt = "queued", model.attempt + 1
            else:
                model.status = "failed"
        self.settle_dependents()

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def store_agrees_with_the_model(self) -> None:
        stored = {job.id: job for job in self.store.jobs.list_jobs(limit=10_000)}
        assert sorted(stored) == sorted(self.jobs)
        for job_id, job in stored.items():
            model = self.jobs[job_id]
            assert (job_id, job.status, job.attempt) == (job_id, model.status, model.attempt)
            if job.status == "running":
                # One holder, the one that claimed it, with the token of its claim.
                assert (job.server, job.fencing_token) == (model.server, model.token)
                assert job.lease_expires_at is not None
            if job.status == "blocked":
                assert job.blocked_reason, f"blocked job {job_id} has no reason"
            if job.status in ("queued", "running"):
                assert job.blocked_reason is None

    @invariant()
    def no_job_is_leased_to_two_servers(self) -> None:
        running = self.store.jobs.running_jobs_by_server()
        leased = [job_id for job_ids in running.values() for job_id in job_ids]
        assert len(leased) == len(set(leased))


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    """A fresh SQLite file per example."""
    counter = len(list(directory.iterdir()))
    path = directory / f"example{counter}"
    path.mkdir()
    yield f"sqlite:///{path}/buildcoord.db"


def run_machine(open_database: DatabaseFactory, examples: int, steps: int) -> None:
    """Run the state machine with a database factory and an example budget."""
    machine = type(
        "QueueMachineOnDatabase", (QueueMachine,), {"open_database": staticmethod(open_database)}
    )
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_the_queue_matches_its_model_on_sqlite(tmp_path: Path) -> None:
    run_machine(lambda: sqlite_database(tmp_path), examples=60, steps=40)


def test_the_queue_matches_its_model_on_postgresql(postgres_server: PostgresServer) -> None:
    run_machine(postgres_server.fresh_database, examples=12, steps=30)
