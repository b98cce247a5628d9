"""Job queue storage: submit, claim, lease, complete, cancel, retry, expire — each one transaction.

Every transition is a compare-and-set (``UPDATE ... WHERE <expected state>`` checked by row
count). Claims read candidates with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite a
claim's write transaction runs under ``BEGIN IMMEDIATE``, once a read found something to
claim. The job tables run prebuilt SQL on the driver's cursor (engine.Driver): every statement
is in job_queries, row conversion in job_rows, the claim and lease endings in job_leases, and
the dependency graph in job_dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from buildcoord.errors import CommitKnown, Conflict, InvalidInput, NotFound
from buildcoord.models import (
    FINISHED_STATUSES,
    ArtifactFile,
    ClaimableJob,
    Job,
    matched_labels,
)
from buildcoord.store import job_queries as queries
from buildcoord.store.artifacts import replace_manifest
from buildcoord.store.engine import (
    Driver,
    driver_read,
    driver_transaction,
    is_sqlite,
    write_transaction,
)
from buildcoord.store.events import record_event
from buildcoord.store.job_dependencies import (
    after_finish,
    blocker_among,
    dependencies_of,
    lock_dependencies,
    unblock_dependents,
)
from buildcoord.store.job_leases import (
    claim_first,
    completion_event,
    end_leases,
    find_claimable,
    refuse,
)
from buildcoord.store.job_rows import NewJob, job_from_row, join_values, snapshot, split_labels

RankFunction = Callable[[int, float], float]
"""(priority, queued_at epoch) -> claim rank; lower ranks are claimed first."""


def _refuse_known_commit(db: Driver, branch: str, commit: str) -> None:
    """CommitKnown if branch has a job at commit; first lock the branch's row (PostgreSQL)."""
    if db.postgresql:
        db.run(queries.LOCK_BRANCH, (branch,))
    known = db.run(queries.KNOWN_COMMIT, (branch, commit)).fetchone()
    if known is not None:
        job_id, status = known
        raise CommitKnown(
            f"{branch} at {commit[:12]} already has job {job_id} ({status})",
            job_id=job_id,
            job_status=status,
        )


def _labels_and_candidates(
    db: Driver, server: str
) -> tuple[frozenset[str], Iterable[Sequence[Any]]]:
    """A claim's start: the server's matched labels and the first page of candidates (none
    for a quarantined server).

    Raises NotFound when there is no such server.
    """
    first: Iterable[Sequence[Any]]
    found: Sequence[Any] | None
    if db.postgresql:
        rows = db.run(queries.LABELS_AND_CANDIDATES, (queries.CLAIM_BATCH, server)).fetchall()
        found = rows[0][:3] if rows else None
        first = [row[3:] for row in rows if row[3] is not None]
    else:
        found = db.run(queries.SERVER_LABELS, (server,)).fetchone()
        idle = found is None or found[2] is not None
        first = () if idle else db.run(queries.CANDIDATES[False], (queries.CLAIM_BATCH,))
    if found is None:
        raise NotFound(f"server {server} does not exist")
    operator_labels, reported_labels, quarantined_at = found
    if quarantined_at is not None:
        first = ()  # a quarantined server gets no new work
    labels = matched_labels(server, split_labels(operator_labels), split_labels(reported_labels))
    return labels, first


def _get(db: Driver, job_id: int) -> Job:
    """One job, or NotFound."""
    row = db.run(queries.GET_JOB, (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} does not exist")
    return job_from_row(row)


class JobStore:
    """SQL for the job queue."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- reads -------------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job:
        """Return one job or raise NotFound."""
        with driver_read(self.engine) as db:
            return _get(db, job_id)

    def list_jobs(
        self,
        *,
        statuses: Sequence[str] | None = None,
        branch: str | None = None,
        server: str | None = None,
        limit: int = 200,
    ) -> list[Job]:
        """Return jobs: queued ones in claim order, the rest newest first."""
        wanted = list(statuses or ())
        statement = queries.list_jobs(
            statuses=len(wanted),
            by_branch=branch is not None,
            by_server=server is not None,
            claim_order=bool(wanted) and set(wanted) <= {"queued"},
        )
        params = [*wanted, *(value for value in (branch, server) if value is not None), limit]
        with driver_read(self.engine) as db:
            return [job_from_row(row) for row in db.run(statement, params).fetchall()]

    def count_by_status(self) -> dict[str, int]:
        """Return the number of jobs in each status."""
        with driver_read(self.engine) as db:
            return {status: count for status, count in db.run(queries.COUNT_BY_STATUS)}

    def running_jobs(self) -> list[Job]:
        """Every running job, by id."""
        with driver_read(self.engine) as db:
            found = [job_from_row(row) for row in db.run(queries.RUNNING).fetchall()]
        return sorted(found, key=lambda job: job.id)

    def waiting_jobs(self) -> tuple[int, float | None]:
        """(claimable queued jobs, when the longest waiting of them was queued)."""
        with driver_read(self.engine) as db:
            count, oldest = db.run(queries.WAITING).fetchone()
        return int(count), oldest

    def running_jobs_by_server(self) -> dict[str, list[int]]:
        """Return the ids of running jobs per server."""
        result: dict[str, list[int]] = {}
        with driver_read(self.engine) as db:
            for server, job_id in db.run(queries.RUNNING_JOBS):
                result.setdefault(server, []).append(job_id)
        return result

    # -- submit ------------------------------------------------------------------------------

    def claimable(self, job_ids: Iterable[int]) -> list[ClaimableJob]:
        """Those of ``job_ids`` an agent's claim could take now, with the labels it must have.

        The same rules as an agent's claim: queued, no dependency pending, of a branch with a
        build command. One primary-key read per job, in one read transaction.
        """
        found: list[ClaimableJob] = []
        with driver_read(self.engine) as db:
            buildable = {name for (name,) in db.run(queries.BUILDABLE_BRANCHES).fetchall()}
            for job_id in job_ids:
                row = db.run(queries.CLAIMABLE_JOB, (job_id,)).fetchone()
                if row is not None and row[3] in buildable:
                    found.append(
                        ClaimableJob(id=row[0], rank=row[1], labels=frozenset(split_labels(row[2])))
                    )
        return found

    def claim_labels(self, server: str) -> frozenset[str]:
        """The labels a server's claims match jobs against; NotFound for no such server."""
        with driver_read(self.engine) as db:
            found = db.run(queries.SERVER_LABELS, (server,)).fetchone()
        if found is None:
            raise NotFound(f"server {server} does not exist")
        return matched_labels(server, split_labels(found[0]), split_labels(found[1]))

    def submit_job(
        self, new: NewJob, *, now: float, rank: float, actor: str, once_per_commit: bool = False
    ) -> Job:
        """Insert a job; refuse unknown dependencies; block it at once if one already failed.

        With once_per_commit, raise CommitKnown instead when the branch already has a job at
        this commit, whatever its status. The check and the insert are one transaction,
        serialised per branch by locking the branch's row (SQLite: BEGIN IMMEDIATE already
        serialises writers), so concurrent submitters cannot both insert.
        """
        with driver_transaction(self.engine) as db:
            if once_per_commit:
                _refuse_known_commit(db, new.branch, new.commit)
            deps = lock_dependencies(db, new.depends_on)
            blocker = blocker_among(deps)
            status = "queued" if blocker is None else "blocked"
            blocked_reason, blocked_by = blocker or (None, None)
            pending = sum(1 for dep in deps if dep[1] != "succeeded")
            values = (
                new.branch,
                new.commit,
                new.priority,
                status,
                new.max_attempts,
                join_values(new.labels),
                join_values(new.depends_on),
                pending,
                rank,
                blocked_reason,
                blocked_by,
                now,
                now,
                new.trigger,
            )
            job = job_from_row(db.run(queries.INSERT_JOB, values).fetchone())
            db.run_many(queries.INSERT_DEPENDENCY, [(job.id, dep) for dep in new.depends_on])
            record_event(
                db,
                at=now,
                actor=actor,
                kind="job.submitted",
                subject=f"job:{job.id}",
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
            return job

    # -- claim and lease ---------------------------------------------------------------------

    def claim_for_server(
        self,
        server: str,
        *,
        now: float,
        lease_seconds: float,
        actor: str,
        buildable_only: bool = False,
    ) -> Job | None:
        """Lease the first claimable job whose labels the server has, or return None.

        The server's labels are read in the claim's own transaction: the operator's, the
        reported ones and its own ``server=<name>`` (models.matched_labels). ``buildable_only``
        (agents) skips jobs of branches without a build command: those stay for a person to
        claim by hand. Raises NotFound when there is no such server.

        On SQLite a claim first looks in a read transaction and returns None there when
        nothing can be claimed, so idle agents' claims never queue for the one write lock;
        only when a candidate exists does it take the lock and look again (another claim
        may have taken it meanwhile). PostgreSQL needs no such read: its one transaction
        locks only the candidates it returns (FOR UPDATE SKIP LOCKED) and, when there is
        none, writes nothing.
        """
        if is_sqlite(self.engine):
            with driver_read(self.engine) as db:
                labels, first = _labels_and_candidates(db, server)
                if find_claimable(db, first, labels, buildable_only) is None:
                    return None
        with driver_transaction(self.engine) as db:
            labels, first = _labels_and_candidates(db, server)
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
        with driver_transaction(self.engine) as db:
            params = (now + lease_seconds, job_id, server, fencing_token)
            row = db.run(queries.RENEW, params).fetchone()
            if row is None:
                refuse(db, job_id, server, fencing_token)
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

        A manifest, when given, is stored in the same transaction as the result (the
        artifacts table is on SQLAlchemy Core, so that transaction is Core's, joined here).

        ``server``/``fencing_token`` of None means an operator completes whichever lease
        is current (as the legacy ``job_queue.sh complete`` did); the event records who did it.
        """
        if status not in ("succeeded", "failed"):
            raise InvalidInput(f"status must be succeeded or failed, not {status!r}")
        params: list[Any] = [status, now, exit_code, reason, duration, now, now, job_id]
        if server is not None:
            params.append(server)
        if fencing_token is not None:
            params.append(fencing_token)
        statement = queries.COMPLETE[(server is not None, fencing_token is not None)]
        with _job_transaction(self.engine, core=manifest is not None) as db:
            values = db.run(statement, params).fetchone()
            if values is None:
                refuse(db, job_id, server, fencing_token)
            job = job_from_row(values)
            event = completion_event(job, duration, now=now, actor=actor)
            if db.postgresql and job.status == "succeeded":
                db.run(queries.RECORD_AND_RELEASE, (*event, job_id))  # one round trip
            else:
                db.run(queries.APPEND_EVENT, event)
                after_finish(db, job, now=now, actor=actor)
            if manifest is not None:
                assert job.server is not None  # a running job has a server
                assert db.connection is not None  # core=True: the transaction is Core's
                replace_manifest(db.connection, job_id, job.server, manifest)
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
        with driver_transaction(self.engine) as db:
            current = _get(db, job_id)
            if current.status in FINISHED_STATUSES:
                raise Conflict(f"job {job_id} is already {current.status}")
            if only_if_status is not None and current.status != only_if_status:
                raise Conflict(f"job {job_id} is {current.status}, no longer {only_if_status}")
            why = reason or f"cancelled by {actor}"
            row = db.run(queries.CANCEL, (now, why, job_id, current.status)).fetchone()
            if row is None:
                raise Conflict(f"job {job_id} changed state while cancelling; try again")
            job = job_from_row(row)
            record_event(
                db,
                at=now,
                actor=actor,
                kind="job.cancelled",
                subject=f"job:{job_id}",
                before=snapshot(current),
                after={"status": "cancelled", "reason": job.reason},
            )
            after_finish(db, job, now=now, actor=actor)
            return job

    def retry_job(self, job_id: int, *, rank_of: RankFunction, now: float, actor: str) -> Job:
        """Queue a failed or cancelled job again as a new attempt; unblock its dependents."""
        with driver_transaction(self.engine) as db:
            current = _get(db, job_id)
            if current.status not in ("failed", "cancelled"):
                raise Conflict(
                    f"job {job_id} is {current.status}; only failed or cancelled jobs are retried"
                )
            # A job whose own dependency failed waits blocked again, never silently queued.
            blocker = blocker_among(dependencies_of(db, current.depends_on))
            status = "queued" if blocker is None else "blocked"
            blocked_reason, blocked_by = blocker or (None, None)
            params = (
                status,
                blocked_reason,
                blocked_by,
                max(current.max_attempts, current.attempt + 1),
                now,
                rank_of(current.priority, now),
                job_id,
                current.status,
            )
            row = db.run(queries.RETRY, params).fetchone()
            if row is None:
                raise Conflict(f"job {job_id} changed state while retrying; try again")
            job = job_from_row(row)
            record_event(
                db,
                at=now,
                actor=actor,
                kind="job.retried",
                subject=f"job:{job_id}",
                before={"status": current.status, "attempt": current.attempt},
                after={"status": status, "attempt": job.attempt, "reason": blocked_reason},
            )
            unblock_dependents(db, job_id, now=now, actor=actor)
            return job

    def set_job_priority(
        self, job_id: int, priority: int, *, rank_of: RankFunction, now: float, actor: str
    ) -> Job:
        """Give a queued or blocked job a new priority; its rank keeps its time in the queue."""
        with driver_transaction(self.engine) as db:
            current = _get(db, job_id)
            if current.status not in ("queued", "blocked"):
                raise Conflict(
                    f"job {job_id} is {current.status}; only a queued or blocked job's priority"
                    " can change"
                )
            rank = rank_of(priority, current.queued_at.timestamp())
            row = db.run(queries.REPRIORITIZE, (priority, rank, job_id, current.status)).fetchone()
            if row is None:
                raise Conflict(f"job {job_id} changed state meanwhile; try again")
            job = job_from_row(row)
            record_event(
                db,
                at=now,
                actor=actor,
                kind="job.reprioritized",
                subject=f"job:{job_id}",
                before={"priority": current.priority},
                after={"priority": priority},
            )
            return job

    def expire_leases(self, *, now: float, actor: str) -> list[Job]:
        """Requeue (attempt + 1) or fail every running job whose lease has run out."""
        with driver_transaction(self.engine) as db:
            return end_leases(
                db,
                queries.EXPIRED_LEASES,
                (now,),
                why="lease expired on {server}",
                kind="job.lease_expired",
                now=now,
                actor=actor,
            )

    def end_leases_of(self, server: str, *, why: str, now: float, actor: str) -> list[Job]:
        """Requeue (attempt + 1) or fail every job running on a server that was lost."""
        with driver_transaction(self.engine) as db:
            return end_leases(
                db,
                queries.LEASES_OF_SERVER,
                (server,),
                why=why,
                kind="job.agent_lost",
                now=now,
                actor=actor,
            )

    def extend_running_leases(self, *, until: float, now: float, actor: str) -> int:
        """Give every running lease at least until ``until`` (a coordinator start: agents
        could not renew while it was down, so they get one lease period to come back)."""
        with driver_transaction(self.engine) as db:
            extended = db.run(queries.EXTEND_LEASES, (until, until)).rowcount
            if extended:
                record_event(
                    db,
                    at=now,
                    actor=actor,
                    kind="job.leases_extended",
                    subject="jobs",
                    after={"count": extended, "until": until},
                )
            return int(extended)

    def rerank_queued(self, rank_of: RankFunction) -> int:
        """Recompute the claim rank of every queued or blocked job (after a policy change)."""
        with driver_transaction(self.engine) as db:
            rows = db.run(queries.RANKED).fetchall()
            ranks = [(rank_of(priority, queued_at), job_id) for job_id, priority, queued_at in rows]
            db.run_many(queries.SET_RANK, ranks)
            return len(rows)


@contextmanager
def _job_transaction(engine: Engine, *, core: bool) -> Iterator[Driver]:
    """A write transaction of job statements; ``core``: one that other tables' Core joins.

    Without ``core`` (the common completion) no SQLAlchemy connection is opened at all.
    """
    if not core:
        with driver_transaction(engine) as db:
            yield db
        return
    with write_transaction(engine) as conn:
        yield Driver.within(conn)
