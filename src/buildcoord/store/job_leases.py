"""Job leases: the claim, its completion event, refused holder writes, ending lost leases.

Functions over the caller's Driver transaction; ``JobStore`` opens it. A claim pages through the
claimable jobs in rank order for the first one the server's labels allow, and leases it with
a compare-and-set that bumps the fencing token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from sqlalchemy.exc import NoResultFound

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import Job
from buildcoord.store import job_queries as queries
from buildcoord.store.engine import Driver, Sql
from buildcoord.store.events import event_values, record_event
from buildcoord.store.history import record_lost
from buildcoord.store.job_dependencies import after_finish
from buildcoord.store.job_rows import job_from_row, snapshot


def claim_first(
    db: Driver,
    first: Iterable[Sequence[Any]],
    server: str,
    server_labels: frozenset[str],
    now: float,
    lease_seconds: float,
    actor: str,
    buildable_only: bool,
) -> Job | None:
    """Lease the first claimable candidate, starting from the first page ``first``."""
    candidate = find_claimable(db, first, server_labels, buildable_only)
    if candidate is None:
        return None
    job_id, attempt, fencing_token = candidate[0], candidate[4], candidate[5]
    # The candidate is ours until commit (PostgreSQL locked it; SQLite holds the write
    # lock), so the event can be written with the lease, from what was read.
    expected = {
        "status": "running",
        "server": server,
        "fencing_token": fencing_token + 1,
        "attempt": attempt,
    }
    event = event_values(now, actor, "job.claimed", f"job:{job_id}", {"status": "queued"}, expected)
    lease = (server, now + lease_seconds, now, job_id)
    if db.postgresql:
        values = db.run(queries.CLAIM_RECORDING, (*lease, *event)).fetchone()
    else:
        values = db.run(queries.CLAIM, lease).fetchone()
    if values is None:
        raise NoResultFound("No row was found when one was required")
    job = job_from_row(values)
    if snapshot(job) | {"attempt": job.attempt} != expected:
        raise RuntimeError(f"job {job_id} changed while this claim held it")
    if not db.postgresql:
        db.run(queries.APPEND_EVENT, event)
        db.run(queries.COUNT_CLAIM, (server,))
    return job


def find_claimable(
    db: Driver,
    first: Iterable[Sequence[Any]],
    server_labels: frozenset[str],
    buildable_only: bool,
) -> Sequence[Any] | None:
    """The first candidate (a CANDIDATES row) the server may take, from the first page on.

    Only reads: a claim runs it first in a read transaction (SQLite) to take the write lock
    only when there is something to claim, then again under the lock to lease.
    """
    buildable = None
    if buildable_only:
        first = list(first)  # read the page before the cursor runs another statement
        if not first:
            return None
        buildable = frozenset(name for (name,) in db.run(queries.BUILDABLE_BRANCHES).fetchall())
        if not buildable:
            return None
    return _find_claimable(db, first, server_labels, buildable)


def _find_claimable(
    db: Driver,
    first: Iterable[Sequence[Any]],
    server_labels: frozenset[str],
    buildable: frozenset[str] | None,
) -> Sequence[Any] | None:
    """The first candidate (a CANDIDATES row) the server may take, paging past others."""
    rows = first
    while True:
        seen = 0
        last = None
        for row in rows:  # SQLite computes no more of a page than is read
            seen += 1
            last = row
            _id, _rank, labels, branch, _attempt, _token = row
            if buildable is not None and branch not in buildable:
                continue
            if not labels or set(labels.split(",")) <= server_labels:
                return row
        if seen < queries.CLAIM_BATCH or last is None:
            return None
        last_id, last_rank = last[0], last[1]
        rows = db.run(
            queries.CANDIDATES[True], (last_rank, last_rank, last_id, queries.CLAIM_BATCH)
        )


def completion_event(
    job: Job, duration: float | None, *, now: float, actor: str
) -> tuple[Any, ...]:
    """The event_values of a completion: the reported duration if any, else the measured one."""
    return event_values(
        now,
        actor,
        f"job.{job.status}",
        f"job:{job.id}",
        {"status": "running", "server": job.server},
        {
            "status": job.status,
            "exit_code": job.exit_code,
            "duration": duration if duration is not None else job.duration,
        },
    )


def refuse(db: Driver, job_id: int, server: str | None, fencing_token: int | None) -> NoReturn:
    """Explain why a lease-holder write matched no row, as NotFound or Conflict."""
    found = db.run(queries.LEASE_STATE, (job_id,)).fetchone()
    if found is None:
        raise NotFound(f"job {job_id} does not exist")
    status, holder, current_token, _attempt = found
    if status != "running":
        raise Conflict(f"job {job_id} is {status}, not running")
    if server is not None and holder != server:
        raise Conflict(f"job {job_id} is leased to {holder}, not {server}")
    raise Conflict(
        f"stale fencing token {fencing_token} for job {job_id}: "
        f"the current lease has token {current_token}"
    )


def end_leases(
    db: Driver, running: Sql, params: Sequence[Any], *, why: str, kind: str, now: float, actor: str
) -> list[Job]:
    """Requeue (attempt + 1) or fail every running job that the ``running`` statement reads.

    ``why`` is the reason, with ``{server}`` for the lost holder; ``kind`` the event's kind.
    """
    changed: list[Job] = []
    for current in [job_from_row(row) for row in db.run(running, params).fetchall()]:
        lost = why.format(server=current.server)
        tries = f"{current.attempt} of {current.max_attempts}"
        lease = (current.id, current.fencing_token)
        if current.attempt < current.max_attempts:
            reason = f"{lost} (attempt {tries}); requeued"
            row = db.run(queries.REQUEUE_LOST, (current.attempt + 1, reason, *lease)).fetchone()
            if row is not None:
                record_lost(db, current, now=now)
        else:
            reason = f"{lost} on the last attempt ({tries})"
            row = db.run(queries.FAIL_LOST, (now, reason, *lease)).fetchone()
        if row is None:
            continue
        job = job_from_row(row)
        record_event(
            db,
            at=now,
            actor=actor,
            kind=kind,
            subject=f"job:{current.id}",
            before=snapshot(current) | {"attempt": current.attempt},
            after={"status": job.status, "attempt": job.attempt, "reason": job.reason},
        )
        if job.status == "failed":
            after_finish(db, job, now=now, actor=actor)
        changed.append(job)
    return changed
