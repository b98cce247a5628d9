"""The job dependency graph: reading dependencies and updating dependents, in a transaction.

A succeeded job releases its dependents (one pending dependency less each); a failed or
cancelled one blocks them transitively, each recording the root job; retrying the root
re-evaluates exactly the jobs it blocked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, select, update

from buildcoord.errors import NotFound
from buildcoord.models import Job
from buildcoord.store.engine import Driver
from buildcoord.store.events import append_event
from buildcoord.store.job_rows import join_values, split_ints
from buildcoord.store.job_statements import RELEASE_DEPENDENTS
from buildcoord.store.schema import job_dependencies, jobs


def blocker_among(deps: Iterable[Row[Any]]) -> tuple[str, int] | None:
    """Return (reason, root job) of the first failed, cancelled or blocked dependency."""
    for dep in sorted(deps, key=lambda row: row.id):
        if dep.status in ("failed", "cancelled"):
            return f"dependency #{dep.id} {dep.status}", dep.id
        if dep.status == "blocked":
            return f"dependency #{dep.id} is blocked: {dep.blocked_reason}", dep.blocked_by
    return None


def lock_dependencies(conn: Connection, ids: Sequence[int]) -> list[Row[Any]]:
    """Read and lock the jobs a submission depends on; NotFound names any that do not exist.

    Locked so that none finishes between this read and the submission's insert.
    """
    if not ids:
        return []
    deps: list[Row[Any]] = list(
        conn.execute(
            select(jobs.c.id, jobs.c.status, jobs.c.blocked_by, jobs.c.blocked_reason)
            .where(jobs.c.id.in_(ids))
            .with_for_update()
        )
    )
    missing = sorted(set(ids) - {row.id for row in deps})
    if missing:
        raise NotFound(f"unknown dependency: job {join_values(missing)} does not exist")
    return deps


def dependencies_of(conn: Connection, depends_on: str) -> list[Row[Any]]:
    """The id, status, blocked_by and blocked_reason of the jobs in a depends_on column."""
    ids = split_ints(depends_on)
    if not ids:
        return []
    return list(
        conn.execute(
            select(jobs.c.id, jobs.c.status, jobs.c.blocked_by, jobs.c.blocked_reason)
            .where(jobs.c.id.in_(ids))
            .order_by(jobs.c.id)
        )
    )


def after_finish(conn: Connection, row: Row[Any] | Job, *, now: float, actor: str) -> None:
    """A job finished: release its dependents if it succeeded, else block them."""
    if row.status == "succeeded":
        Driver.on(conn).run(RELEASE_DEPENDENTS, (row.id,))
    else:
        _block_dependents(conn, row.id, row.status, now=now, actor=actor)


def _block_dependents(
    conn: Connection, root: int, root_status: str, *, now: float, actor: str
) -> None:
    root_reason = f"dependency #{root} {root_status}"
    reasons = {root: root_reason}
    frontier = [root]
    while frontier:
        children = conn.execute(
            select(job_dependencies.c.job_id, job_dependencies.c.depends_on_id)
            .join(jobs, jobs.c.id == job_dependencies.c.job_id)
            .where(
                job_dependencies.c.depends_on_id.in_(frontier),
                jobs.c.status == "queued",
            )
            .order_by(job_dependencies.c.job_id)
        ).all()
        frontier = []
        for child, parent in children:
            if child in reasons:
                continue
            reason = (
                root_reason if parent == root else f"dependency #{parent} is blocked: {root_reason}"
            )
            blocked = conn.execute(
                update(jobs)
                .where(jobs.c.id == child, jobs.c.status == "queued")
                .values(status="blocked", blocked_reason=reason, blocked_by=root)
            ).rowcount
            if blocked:
                reasons[child] = reason
                frontier.append(child)
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="job.blocked",
                    subject=f"job:{child}",
                    before={"status": "queued"},
                    after={"status": "blocked", "reason": reason},
                )


def unblock_dependents(conn: Connection, root: int, *, now: float, actor: str) -> None:
    """The root job was retried: requeue the jobs it blocked, or record what blocks them now."""
    # Dependencies always have smaller ids than their dependents, so ascending id order
    # visits every job after all the jobs it depends on.
    candidates = conn.execute(
        select(jobs.c.id, jobs.c.depends_on)
        .where(jobs.c.blocked_by == root, jobs.c.status == "blocked")
        .order_by(jobs.c.id)
    ).all()
    for candidate in candidates:
        blocker = blocker_among(dependencies_of(conn, candidate.depends_on))
        values: dict[str, Any] = (
            {"status": "queued", "blocked_reason": None, "blocked_by": None}
            if blocker is None
            else {"blocked_reason": blocker[0], "blocked_by": blocker[1]}
        )
        conn.execute(update(jobs).where(jobs.c.id == candidate.id).values(**values))
        if values.get("status") == "queued":
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="job.unblocked",
                subject=f"job:{candidate.id}",
                before={"status": "blocked"},
                after={"status": "queued"},
            )
