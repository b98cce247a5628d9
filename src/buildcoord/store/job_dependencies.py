"""The job dependency graph: reading dependencies and updating dependents, in a transaction.

A succeeded job releases its dependents (one pending dependency less each); a failed or
cancelled one blocks them transitively, each recording the root job; retrying the root
re-evaluates exactly the jobs it blocked. Functions over the caller's Driver transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from buildcoord.errors import NotFound
from buildcoord.models import Job
from buildcoord.store import job_queries as queries
from buildcoord.store.engine import Driver
from buildcoord.store.events import record_event
from buildcoord.store.job_rows import join_values, split_ints


def blocker_among(deps: Iterable[Sequence[Any]]) -> tuple[str, int] | None:
    """Return (reason, root job) of the first failed, cancelled or blocked dependency.

    ``deps`` are rows of job_queries.DEPENDENCIES: (id, status, blocked_by, blocked_reason).
    """
    for dep_id, status, blocked_by, blocked_reason in sorted(deps, key=lambda row: row[0]):
        if status in ("failed", "cancelled"):
            return f"dependency #{dep_id} {status}", dep_id
        if status == "blocked":
            return f"dependency #{dep_id} is blocked: {blocked_reason}", blocked_by
    return None


def lock_dependencies(db: Driver, ids: Sequence[int]) -> list[Sequence[Any]]:
    """Read and lock the jobs a submission depends on; NotFound names any that do not exist.

    Locked so that none finishes between this read and the submission's insert.
    """
    if not ids:
        return []
    deps = list(db.run(queries.LOCK_DEPENDENCIES, (queries.ids_param(ids),)).fetchall())
    missing = sorted(set(ids) - {row[0] for row in deps})
    if missing:
        raise NotFound(f"unknown dependency: job {join_values(missing)} does not exist")
    return deps


def dependencies_of(db: Driver, depends_on: tuple[int, ...]) -> list[Sequence[Any]]:
    """The id, status, blocked_by and blocked_reason of the jobs a job depends on."""
    if not depends_on:
        return []
    return list(db.run(queries.DEPENDENCIES, (queries.ids_param(depends_on),)).fetchall())


def after_finish(db: Driver, job: Job, *, now: float, actor: str) -> None:
    """A job finished: release its dependents if it succeeded, else block them."""
    if job.status == "succeeded":
        db.run(queries.RELEASE_DEPENDENTS, (job.id,))
    else:
        _block_dependents(db, job.id, job.status, now=now, actor=actor)


def _block_dependents(db: Driver, root: int, root_status: str, *, now: float, actor: str) -> None:
    root_reason = f"dependency #{root} {root_status}"
    reasons = {root: root_reason}
    frontier = [root]
    while frontier:
        children = db.run(queries.QUEUED_DEPENDENTS, (queries.ids_param(frontier),)).fetchall()
        frontier = []
        for child, parent in children:
            if child in reasons:
                continue
            reason = (
                root_reason if parent == root else f"dependency #{parent} is blocked: {root_reason}"
            )
            if db.run(queries.BLOCK, (reason, root, child)).rowcount:
                reasons[child] = reason
                frontier.append(child)
                record_event(
                    db,
                    at=now,
                    actor=actor,
                    kind="job.blocked",
                    subject=f"job:{child}",
                    before={"status": "queued"},
                    after={"status": "blocked", "reason": reason},
                )


def unblock_dependents(db: Driver, root: int, *, now: float, actor: str) -> None:
    """The root job was retried: requeue the jobs it blocked, or record what blocks them now."""
    # Dependencies always have smaller ids than their dependents, so ascending id order
    # visits every job after all the jobs it depends on.
    for job_id, depends_on in db.run(queries.BLOCKED_BY, (root,)).fetchall():
        blocker = blocker_among(dependencies_of(db, split_ints(depends_on)))
        if blocker is not None:
            db.run(queries.REBLOCK, (*blocker, job_id))
            continue
        db.run(queries.UNBLOCK, (job_id,))
        record_event(
            db,
            at=now,
            actor=actor,
            kind="job.unblocked",
            subject=f"job:{job_id}",
            before={"status": "blocked"},
            after={"status": "queued"},
        )
