"""Eight OS processes claim and complete one queue together: every job is claimed exactly once."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest
from sqlalchemy import func, insert, select

from buildcoord.clock import FakeClock, SystemClock
from buildcoord.config import Settings
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.queue import claim_rank
from buildcoord.store import Store
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.schema import events, jobs

from .conftest import RegisterServer

JOBS = 2_000
WORKERS = 8


def claim_until_empty(url: str, server: str) -> list[int]:
    """In a child process: claim and complete jobs as ``server`` until none is left."""
    store = Store.open(url, migrate=False)
    try:
        coordinator = Coordinator(store, Settings(), SystemClock())
        agent = Principal("agent", f"agent {server}", server=server)
        claimed: list[int] = []
        for _ in range(JOBS + 1):  # bounded: no worker can claim more than every job
            job = coordinator.queue.claim_next(server, by=agent)
            if job is None:
                break
            claimed.append(job.id)
            coordinator.queue.complete(
                job.id,
                status="succeeded",
                exit_code=0,
                server=server,
                fencing_token=job.fencing_token,
                by=agent,
            )
        return claimed
    finally:
        store.close()


def _queue_jobs(store: Store, clock: FakeClock) -> None:
    """Queue JOBS jobs in one transaction (what submit writes, without 2,000 round trips)."""
    now = clock.now().timestamp()
    aging = Settings().priority_aging_minutes * 60
    rows = [
        {
            "branch": "main",
            "commit": f"{number:07x}",
            "priority": number % 10 + 1,
            "status": "queued",
            "attempt": 1,
            "max_attempts": 3,
            "labels": "",
            "depends_on": "",
            "pending_deps": 0,
            "rank": claim_rank(number % 10 + 1, now, aging),
            "fencing_token": 0,
            "created_at": now,
            "queued_at": now,
        }
        for number in range(JOBS)
    ]
    with write_transaction(store.engine) as conn:
        conn.execute(insert(jobs), rows)


@pytest.mark.slow
def test_eight_processes_claim_each_of_2000_jobs_exactly_once(
    migrated_db_url: str, store: Store, clock: FakeClock, register_server: RegisterServer
) -> None:
    servers = [f"worker{number}" for number in range(WORKERS)]
    for server in servers:
        register_server(server)
    _queue_jobs(store, clock)

    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        results = pool.starmap(claim_until_empty, [(migrated_db_url, server) for server in servers])

    claimed = Counter(job_id for result in results for job_id in result)
    assert len(claimed) == JOBS
    assert set(claimed.values()) == {1}
    assert store.jobs.count_by_status() == {"succeeded": JOBS}
    with read_transaction(store.engine) as conn:
        claim_events: dict[str, int] = dict(
            conn.execute(
                select(events.c.subject, func.count())
                .where(events.c.kind == "job.claimed")
                .group_by(events.c.subject)
            ).all()
        )
    assert claim_events == {f"job:{job_id}": 1 for job_id in claimed}
    assert sum(1 for result in results if result) > 1  # the work really was shared
