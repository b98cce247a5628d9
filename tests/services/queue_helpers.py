"""Steps the job queue tests share: submit, claim and finish as a principal, and read events."""

from __future__ import annotations

from typing import Any

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.models import Job, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LEASE = Settings().job_lease_seconds
AGING = Settings().priority_aging_minutes * 60


def submit(coordinator: Coordinator, by: Principal, **fields: Any) -> Job:
    """Queue a job on main at COMMIT, with any field overridden."""
    branch = fields.pop("branch", "main")
    commit = fields.pop("commit", COMMIT)
    return coordinator.queue.submit(branch, commit, by=by, **fields)


def claim(coordinator: Coordinator, by: Principal) -> Job | None:
    """Claim the next job as the agent's own server."""
    assert by.server is not None
    return coordinator.queue.claim_next(by.server, by=by)


def claim_id(coordinator: Coordinator, by: Principal) -> int | None:
    """Claim the next job and return its id, or None."""
    job = claim(coordinator, by)
    return None if job is None else job.id


def finish(coordinator: Coordinator, job: Job, by: Principal, status: str = "succeeded") -> Job:
    """Complete a claimed job as its holder with its current fencing token."""
    assert job.server is not None
    return coordinator.queue.complete(
        job.id, status=status, server=job.server, fencing_token=job.fencing_token, by=by
    )


def claim_and_finish(
    coordinator: Coordinator, by: Principal, expected: int, status: str = "succeeded"
) -> Job:
    """Claim, check the claimed job is ``expected``, and complete it."""
    job = claim(coordinator, by)
    assert job is not None
    assert job.id == expected
    return finish(coordinator, job, by, status)


def build_on(
    coordinator: Coordinator,
    agent: Principal,
    operator: Principal,
    result: str = "succeeded",
    *,
    branch: str = "main",
    commit: str = COMMIT,
    duration: float | None = None,
    clock: FakeClock | None = None,
    seconds: float = 0.0,
) -> int:
    """Queue a build of the branch, have the agent's own server claim it and finish it with
    ``result`` (``seconds`` later on ``clock``, when given); return the job's id."""
    assert agent.server is not None
    coordinator.queue.submit(branch, commit, by=operator)
    assignment = coordinator.agents.claim(agent.server, by=agent)
    assert assignment is not None
    if clock is not None:
        clock.advance(seconds)
    job = assignment.job
    coordinator.queue.complete(
        job.id,
        status=result,
        server=agent.server,
        fencing_token=job.fencing_token,
        duration=duration,
        by=agent,
    )
    return job.id


def event_kinds(store: Store, job_id: int) -> list[str]:
    """The kinds of events recorded for one job, in order."""
    return [event.kind for event in store.events.list_events(subject=f"job:{job_id}")]
