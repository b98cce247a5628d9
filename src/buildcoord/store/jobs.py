"""Job queue storage: submit, claim, lease, complete, cancel, retry, expire — each one transaction.

Every transition is a compare-and-set (``UPDATE ... WHERE <expected state>`` checked by row
count). Claims read candidates with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the
whole write transaction runs under ``BEGIN IMMEDIATE`` and the clause renders as nothing.
The hot path's SQL is in job_statements, row conversion in job_rows, the claim and lease
endings in job_leases, and the dependency graph in job_dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, func, insert, select, update

from buildcoord.errors import CommitKnown, Conflict, InvalidInput, NotFound
from buildcoord.models import FINISHED_STATUSES, ArtifactFile, Job, matched_labels
from buildcoord.store.artifacts import replace_manifest
from buildcoord.store.engine import (
    Driver,
    driver_transaction,
    read_transaction,
    write_transaction,
)
from buildcoord.store.events import APPEND_EVENT, append_event
from buildcoord.store.job_dependencies import (
    after_finish,
    blocker_among,
    dependencies_of,
    lock_dependencies,
    unblock_dependents,
)
from buildcoord.store.job_leases import claim_first, completion_event, end_leases, refuse
from buildcoord.store.job_rows import (
    NewJob,
    job_from_row,
    job_from_values,
    join_values,
    snapshot,
    split_labels,
)
from buildcoord.store.job_statements import (
    CANDIDATES,
    CLAIM_BATCH,
    COMPLETE,
    LABELS_AND_CANDIDATES,
    RECORD_AND_RELEASE,
    RELEASE_DEPENDENTS,
    SERVER_LABELS,
)
from buildcoord.store.schema import branches, job_dependencies, jobs

RankFunction = Callable[[int, float], float]
"""(priority, queued_at epoch) -> claim rank; lower ranks are claimed first."""


def _refuse_known_commit(conn: Connection, branch: str, commit: str) -> None:
    """CommitKnown if branch has a job at commit; first lock the branch's row (PostgreSQL)."""
    conn.execute(select(branches.c.name).where(branches.c.name == branch).with_for_update())
    known = conn.execute(
        select(jobs.c.id, jobs.c.status)
        .where(jobs.c.branch == branch, jobs.c.commit == commit)
        .order_by(jobs.c.id.desc())
        .limit(1)
    ).first()
    if known is not None:
        raise CommitKnown(
            f"{branch} at {commit[:12]} already has job {known.id} ({known.status})",
            job_id=known.id,
            job_status=known.status,
        )


class JobStore:
    """SQL for the job queue."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reads -------------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job:
        """Return one job or raise NotFound."""
        with read_transaction(self.engine) as conn:
            return job_from_row(self._row(conn, job_id))

    def list_jobs(
        self,
        *,
        statuses: Sequence[str] | None = None,
        branch: str | None = None,
        server: str | None = None,
        limit: int = 200,
    ) -> list[Job]:
        """Return jobs: queued ones in claim order, the rest newest first."""
        query = select(jobs).limit(limit)
        if statuses:
            query = query.where(jobs.c.status.in_(list(statuses)))
        if branch is not None:
            query = query.where(jobs.c.branch == branch)
        if server is not None:
            query = query.where(jobs.c.server == server)
        if statuses and set(statuses) <= {"queued"}:
            query = query.order_by(jobs.c.pending_deps > 0, jobs.c.rank, jobs.c.id)
        else:
            query = query.order_by(jobs.c.id.desc())
        with read_transaction(self.engine) as conn:
            return [job_from_row(row) for row in conn.execute(query)]

    def count_by_status(self) -> dict[str, int]:
        """Return the number of jobs in each status."""
        query = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        with read_transaction(self.engine) as conn:
            return {status: count for status, count in conn.execute(query)}

    def running_jobs_by_server(self) -> dict[str, list[int]]:
        """Return the ids of running jobs per server."""
        query = (
            select(jobs.c.server, jobs.c.id).where(jobs.c.status == "running").order_by(jobs.c.id)
        )
        result: dict[str, list[int]] = {}
        with read_transaction(self.engine) as conn:
            for server, job_id in conn.execute(query):
                result.setdefault(server, []).append(job_id)
        return result

    # -- submit ------------------------------------------------------------------------------

    def submit_job(
        self, new: NewJob, *, now: float, rank: float, actor: str, once_per_commit: bool = False
    ) -> Job:
        """Insert a job; refuse unknown dependencies; block it at once if one already failed.

        With once_per_commit, raise CommitKnown instead when the branch already has a job at
        this commit, whatever its status. The check and the insert are one transaction,
        serialised per branch by locking the branch's row (SQLite: BEGIN IMMEDIATE already
        serialises writers), so concurrent submitters cannot both insert.
        """
        with write_transaction(self.engine) as conn:
            if once_per_commit:
                _refuse_known_commit(conn, new.branch, new.commit)
            deps = lock_dependencies(conn, new.depends_on)
            blocker = blocker_among(deps)
            status = "queued" if blocker is None else "blocked"
            blocked_reason, blocked_by = blocker or (None, None)
            pending = sum(1 for dep in deps if dep.status != "succeeded")
            row = conn.execute(
                insert(jobs)
                .values(
                    branch=new.branch,
                    commit=new.commit,
                    priority=new.priority,
                    status=status,
                    attempt=1,
                    max_attempts=new.max_attempts,
                    labels=join_values(new.labels),
                    depends_on=join_values(new.depends_on),
                    pending_deps=pending,
                    rank=rank,
                    fencing_token=0,
                    blocked_reason=blocked_reason,
                    blocked_by=blocked_by,
                    created_at=now,
                    queued_at=now,
                    trigger=new.trigger,
                )
                .returning(*jobs.c)
            ).one()
            if new.depends_on:
                conn.execute(
                    insert(job_dependencies),
                    [{"job_id": row.id, "depends_on_id": dep} for dep in new.depends_on],
                )
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="job.submitted",
                subject=f"job:{row.id}",
                after={
                    "status": status,
                    "branch": new.branch,
                    "commit": new.commit,
                    "priority": new.priority,
                    "depends_on": list(new.depends_on),
                    "labels": list(new.labels),
                    "trigger": new.trigger,
                },
            )
            return job_from_row(row)

    # -- claim and lease ---------------------------------------------------------------------

    def claim_next_job(
        self,
        server: str,
        server_labels: frozenset[str],
        *,
        now: float,
        lease_seconds: float,
        actor: str,
        buildable_only: bool = False,
    ) -> Job | None:
        """Lease the first claimable job whose labels the server has, or return None.

        The server has ``server_labels`` and its own ``server=<name>``. ``buildable_only``
        (agents) skips jobs of branches without a build command: those stay for a person to
        claim by hand.
        """
        with driver_transaction(self.engine) as db:
            first = db.run(CANDIDATES[False], (CLAIM_BATCH,))
            labels = matched_labels(server, server_labels, ())
            return claim_first(db, first, server, labels, now, lease_seconds, actor, buildable_only)

    def claim_for_server(
        self,
        server: str,
        *,
        now: float,
        lease_seconds: float,
        actor: str,
        buildable_only: bool = False,
    ) -> Job | None:
        """Like claim_next_job, with the server's labels read in the claim's own transaction:
        the operator's, the reported ones and its own (models.matched_labels).

        Raises NotFound when there is no such server.
        """
        with driver_transaction(self.engine) as db:
            first: Iterable[Sequence[Any]]
            found: Sequence[Any] | None
            if db.postgresql:
                rows = db.run(LABELS_AND_CANDIDATES, (CLAIM_BATCH, server)).fetchall()
                found = rows[0][:2] if rows else None
                first = [row[2:] for row in rows if row[2] is not None]
            else:
                found = db.run(SERVER_LABELS, (server,)).fetchone()
                first = () if found is None else db.run(CANDIDATES[False], (CLAIM_BATCH,))
            if found is None:
                raise NotFound(f"server {server} does not exist")
            operator_labels, reported_labels = found
            labels = matched_labels(
                server, split_labels(operator_labels), split_labels(reported_labels)
            )
            return claim_first(db, first, server, labels, now, lease_seconds, actor, buildable_only)

    def renew_lease(
        self,
        job_id: int,
        *,
        server: str,
        fencing_token: int,
        now: float,
        lease_seconds: float,
        actor: str,
    ) -> Job:
        """Extend the lease of a running job; only its holder with the current token may."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                update(jobs)
                .where(
                    jobs.c.id == job_id,
                    jobs.c.status == "running",
                    jobs.c.server == server,
                    jobs.c.fencing_token == fencing_token,
                )
                .values(lease_expires_at=now + lease_seconds)
                .returning(*jobs.c)
            ).one_or_none()
            if row is None:
                refuse(Driver.on(conn), job_id, server, fencing_token)
            return job_from_row(row)

    def complete_job(
        self,
        job_id: int,
        *,
        server: str | None,
        fencing_token: int | None,
        status: str,
        exit_code: int | None,
        duration: float | None,
        reason: str | None,
        now: float,
        actor: str,
        manifest: Sequence[ArtifactFile] | None = None,
    ) -> Job:
        """Finish a running job as succeeded or failed; only the current lease may.

        A manifest, when given, is stored in the same transaction as the result.

        ``server``/``fencing_token`` of None means an operator completes whichever lease
        is current (the seed's ``job_queue.sh complete``); the event records who did it.
        """
        if status not in ("succeeded", "failed"):
            raise InvalidInput(f"status must be succeeded or failed, not {status!r}")
        params: list[Any] = [status, now, exit_code, reason, duration, now, now, job_id]
        if server is not None:
            params.append(server)
        if fencing_token is not None:
            params.append(fencing_token)
        statement = COMPLETE[(server is not None, fencing_token is not None)]
        if status == "succeeded" and manifest is None:
            # The common case needs no Core statement: all of it runs on the driver.
            with driver_transaction(self.engine) as db:
                values = db.run(statement, params).fetchone()
                if values is None:
                    refuse(db, job_id, server, fencing_token)
                job = job_from_values(values)
                event = completion_event(job, duration, now=now, actor=actor)
                if db.postgresql:
                    db.run(RECORD_AND_RELEASE, (*event, job_id))
                else:
                    db.run(APPEND_EVENT, event)
                    db.run(RELEASE_DEPENDENTS, (job_id,))
                return job
        with write_transaction(self.engine) as conn:
            db = Driver.on(conn)
            values = db.run(statement, params).fetchone()
            if values is None:
                refuse(db, job_id, server, fencing_token)
            job = job_from_values(values)
            db.run(APPEND_EVENT, completion_event(job, duration, now=now, actor=actor))
            if manifest is not None:
                assert job.server is not None  # a running job has a server
                replace_manifest(conn, job_id, job.server, manifest)
            after_finish(conn, job, now=now, actor=actor)
            return job

    def cancel_job(
        self,
        job_id: int,
        *,
        reason: str | None,
        now: float,
        actor: str,
        only_if_status: str | None = None,
    ) -> Job:
        """Cancel a queued, blocked or running job; its dependents become blocked.

        only_if_status: refuse (Conflict) unless the job is in that status right now.
        """
        with write_transaction(self.engine) as conn:
            current = self._row(conn, job_id)
            if current.status in FINISHED_STATUSES:
                raise Conflict(f"job {job_id} is already {current.status}")
            if only_if_status is not None and current.status != only_if_status:
                raise Conflict(f"job {job_id} is {current.status}, no longer {only_if_status}")
            row = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == current.status)
                .values(
                    status="cancelled",
                    finished_at=now,
                    lease_expires_at=None,
                    reason=reason or f"cancelled by {actor}",
                )
                .returning(*jobs.c)
            ).one_or_none()
            if row is None:
                raise Conflict(f"job {job_id} changed state while cancelling; try again")
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="job.cancelled",
                subject=f"job:{job_id}",
                before=snapshot(current),
                after={"status": "cancelled", "reason": row.reason},
            )
            after_finish(conn, row, now=now, actor=actor)
            return job_from_row(row)

    def retry_job(self, job_id: int, *, rank_of: RankFunction, now: float, actor: str) -> Job:
        """Queue a failed or cancelled job again as a new attempt; unblock its dependents."""
        with write_transaction(self.engine) as conn:
            current = self._row(conn, job_id)
            if current.status not in ("failed", "cancelled"):
                raise Conflict(
                    f"job {job_id} is {current.status}; only failed or cancelled jobs are retried"
                )
            # A job whose own dependency failed waits blocked again, never silently queued.
            blocker = blocker_among(dependencies_of(conn, current.depends_on))
            status = "queued" if blocker is None else "blocked"
            blocked_reason, blocked_by = blocker or (None, None)
            row = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == current.status)
                .values(
                    status=status,
                    blocked_reason=blocked_reason,
                    blocked_by=blocked_by,
                    attempt=jobs.c.attempt + 1,
                    max_attempts=max(current.max_attempts, current.attempt + 1),
                    server=None,
                    lease_expires_at=None,
                    started_at=None,
                    finished_at=None,
                    exit_code=None,
                    duration=None,
                    reason=None,
                    queued_at=now,
                    rank=rank_of(current.priority, now),
                )
                .returning(*jobs.c)
            ).one_or_none()
            if row is None:
                raise Conflict(f"job {job_id} changed state while retrying; try again")
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="job.retried",
                subject=f"job:{job_id}",
                before={"status": current.status, "attempt": current.attempt},
                after={"status": status, "attempt": row.attempt, "reason": blocked_reason},
            )
            unblock_dependents(conn, job_id, now=now, actor=actor)
            return job_from_row(row)

    def expire_leases(self, *, now: float, actor: str) -> list[Job]:
        """Requeue (attempt + 1) or fail every running job whose lease has run out."""
        with write_transaction(self.engine) as conn:
            return end_leases(
                conn,
                jobs.c.lease_expires_at < now,
                why="lease expired on {server}",
                kind="job.lease_expired",
                now=now,
                actor=actor,
            )

    def end_leases_of(self, server: str, *, why: str, now: float, actor: str) -> list[Job]:
        """Requeue (attempt + 1) or fail every job running on a server that was lost."""
        with write_transaction(self.engine) as conn:
            return end_leases(
                conn, jobs.c.server == server, why=why, kind="job.agent_lost", now=now, actor=actor
            )

    def extend_running_leases(self, *, until: float, now: float, actor: str) -> int:
        """Give every running lease at least until ``until`` (a coordinator start: agents
        could not renew while it was down, so they get one lease period to come back)."""
        with write_transaction(self.engine) as conn:
            extended = conn.execute(
                update(jobs)
                .where(jobs.c.status == "running", jobs.c.lease_expires_at < until)
                .values(lease_expires_at=until)
            ).rowcount
            if extended:
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="job.leases_extended",
                    subject="jobs",
                    after={"count": extended, "until": until},
                )
            return int(extended)

    def rerank_queued(self, rank_of: RankFunction) -> int:
        """Recompute the claim rank of every queued or blocked job (after a policy change)."""
        with write_transaction(self.engine) as conn:
            rows = conn.execute(
                select(jobs.c.id, jobs.c.priority, jobs.c.queued_at).where(
                    jobs.c.status.in_(["queued", "blocked"])
                )
            ).all()
            if rows:
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == bindparam("row_id"))
                    .values(rank=bindparam("new_rank")),
                    [
                        {"row_id": row.id, "new_rank": rank_of(row.priority, row.queued_at)}
                        for row in rows
                    ],
                )
            return len(rows)

    def _row(self, conn: Connection, job_id: int) -> Row[Any]:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return row
