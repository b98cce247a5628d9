"""Job queue storage: submit, claim, lease, complete, cancel, retry, expire — each one transaction.

Every transition is a compare-and-set (``UPDATE ... WHERE <expected state>`` checked by row
count). Claims read candidates with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the
whole write transaction runs under ``BEGIN IMMEDIATE`` and the clause renders as nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Double,
    Engine,
    Row,
    TextClause,
    Update,
    bindparam,
    case,
    func,
    insert,
    select,
    text,
    update,
)

from buildcoord.errors import Conflict, InvalidInput, NotFound
from buildcoord.models import FINISHED_STATUSES, ArtifactFile, Job
from buildcoord.store.artifacts import replace_manifest
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.schema import branches, job_dependencies, jobs
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

# How many claimable rows one claim reads at a time while looking for a label match.
CLAIM_BATCH = 16

RankFunction = Callable[[int, float], float]
"""(priority, queued_at epoch) -> claim rank; lower ranks are claimed first."""

# The hot path (claim, complete) runs statements built once here: building a SQLAlchemy
# statement and its cache key on every call cost more than the database work itself.


def _candidates(dialect: str, *, paged: bool) -> TextClause:
    """The claim's candidate read, straight off ix_jobs_claim_order.

    The index's predicate is written out verbatim: with a bound 'queued' the planner cannot
    match the partial index. SQLite is also told the index by name: without statistics it
    preferred ix_jobs_status_lease and sorted every queued row (and ANALYZE can flip the
    choice), so the plan no longer depends on what the planner guesses.
    """
    source = "jobs INDEXED BY ix_jobs_claim_order" if dialect == "sqlite" else "jobs"
    after = " AND (rank > :after_rank OR (rank = :after_rank AND id > :after_id))"
    lock = "" if dialect == "sqlite" else " FOR UPDATE SKIP LOCKED"
    return text(
        f"SELECT id, rank, labels, branch FROM {source}"
        f" WHERE status = 'queued' AND pending_deps = 0{after if paged else ''}"
        f" ORDER BY rank, id LIMIT :batch{lock}"
    )


_CANDIDATES = {
    (dialect, paged): _candidates(dialect, paged=paged)
    for dialect in ("sqlite", "postgresql")
    for paged in (False, True)
}

_CLAIM = (
    update(jobs)
    .where(jobs.c.id == bindparam("job_id"), jobs.c.status == "queued")
    .values(
        status="running",
        server=bindparam("claim_server"),
        fencing_token=jobs.c.fencing_token + 1,
        lease_expires_at=bindparam("lease_until"),
        started_at=bindparam("claim_now"),
        reason=None,
    )
    .returning(*jobs.c)
)


def _complete_statement(*, by_server: bool, by_token: bool) -> Update:
    """Finish the current lease; the duration, unless given, is now - started_at (>= 0)."""
    conditions = [jobs.c.id == bindparam("job_id"), jobs.c.status == "running"]
    if by_server:
        conditions.append(jobs.c.server == bindparam("lease_server"))
    if by_token:
        conditions.append(jobs.c.fencing_token == bindparam("lease_token"))
    elapsed: ColumnElement[float] = bindparam("finish_now", type_=Double()) - jobs.c.started_at
    return (
        update(jobs)
        .where(*conditions)
        .values(
            status=bindparam("new_status"),
            finished_at=bindparam("finish_now", type_=Double()),
            exit_code=bindparam("new_exit_code"),
            duration=func.coalesce(
                bindparam("given_duration", type_=Double()),
                case((elapsed > 0, elapsed), else_=0.0),
            ),
            lease_expires_at=None,
            reason=bindparam("new_reason"),
        )
        .returning(*jobs.c)
    )


_COMPLETE = {
    (by_server, by_token): _complete_statement(by_server=by_server, by_token=by_token)
    for by_server in (False, True)
    for by_token in (False, True)
}

_RELEASE_DEPENDENTS = (
    update(jobs)
    .where(
        jobs.c.id.in_(
            select(job_dependencies.c.job_id).where(
                job_dependencies.c.depends_on_id == bindparam("finished_id")
            )
        )
    )
    .values(pending_deps=jobs.c.pending_deps - 1)
)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job submission."""

    branch: str
    commit: str
    priority: int
    depends_on: tuple[int, ...]
    labels: tuple[str, ...]
    max_attempts: int


def _join(values: Iterable[object]) -> str:
    return ",".join(str(value) for value in values)


def _split_ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def _split_labels(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


def job_from_row(row: Row[Any]) -> Job:
    """Build a Job from a row of the jobs table."""
    return Job(
        id=row.id,
        branch=row.branch,
        commit=row.commit,
        priority=row.priority,
        status=row.status,
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        depends_on=_split_ints(row.depends_on),
        labels=_split_labels(row.labels),
        pending_dependencies=row.pending_deps,
        server=row.server,
        fencing_token=row.fencing_token,
        lease_expires_at=from_epoch_or_none(row.lease_expires_at),
        blocked_reason=row.blocked_reason,
        reason=row.reason,
        created_at=from_epoch(row.created_at),
        queued_at=from_epoch(row.queued_at),
        started_at=from_epoch_or_none(row.started_at),
        finished_at=from_epoch_or_none(row.finished_at),
        exit_code=row.exit_code,
        duration=row.duration,
    )


def _blocker(deps: Iterable[Row[Any]]) -> tuple[str, int] | None:
    """Return (reason, root job) of the first failed, cancelled or blocked dependency."""
    for dep in sorted(deps, key=lambda row: row.id):
        if dep.status in ("failed", "cancelled"):
            return f"dependency #{dep.id} {dep.status}", dep.id
        if dep.status == "blocked":
            return f"dependency #{dep.id} is blocked: {dep.blocked_reason}", dep.blocked_by
    return None


def _snapshot(row: Row[Any] | Job) -> dict[str, Any]:
    return {"status": row.status, "server": row.server, "fencing_token": row.fencing_token}


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

    def submit_job(self, new: NewJob, *, now: float, rank: float, actor: str) -> Job:
        """Insert a job; refuse unknown dependencies; block it at once if one already failed."""
        with write_transaction(self.engine) as conn:
            deps: list[Row[Any]] = []
            if new.depends_on:
                # Lock the dependencies so none finishes between this read and our insert.
                deps = list(
                    conn.execute(
                        select(jobs.c.id, jobs.c.status, jobs.c.blocked_by, jobs.c.blocked_reason)
                        .where(jobs.c.id.in_(new.depends_on))
                        .with_for_update()
                    )
                )
                missing = sorted(set(new.depends_on) - {row.id for row in deps})
                if missing:
                    raise NotFound(f"unknown dependency: job {_join(missing)} does not exist")
            blocker = _blocker(deps)
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
                    labels=_join(new.labels),
                    depends_on=_join(new.depends_on),
                    pending_deps=pending,
                    rank=rank,
                    fencing_token=0,
                    blocked_reason=blocked_reason,
                    blocked_by=blocked_by,
                    created_at=now,
                    queued_at=now,
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

        ``buildable_only`` (agents) skips jobs of branches without a build command: those
        stay for a person to claim by hand.
        """
        with write_transaction(self.engine) as conn:
            buildable = None
            if buildable_only:
                buildable = frozenset(
                    conn.execute(
                        select(branches.c.name).where(branches.c.command.is_not(None))
                    ).scalars()
                )
                if not buildable:
                    return None
            job_id = self._find_claimable(conn, server_labels, buildable)
            if job_id is None:
                return None
            row = conn.execute(
                _CLAIM,
                {
                    "job_id": job_id,
                    "claim_server": server,
                    "lease_until": now + lease_seconds,
                    "claim_now": now,
                },
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="job.claimed",
                subject=f"job:{job_id}",
                before={"status": "queued"},
                after=_snapshot(row) | {"attempt": row.attempt},
            )
            return job_from_row(row)

    def _find_claimable(
        self,
        conn: Connection,
        server_labels: frozenset[str],
        buildable: frozenset[str] | None,
    ) -> int | None:
        dialect = "sqlite" if conn.dialect.name == "sqlite" else "postgresql"
        after: tuple[float, int] | None = None
        while True:
            params: dict[str, Any] = {"batch": CLAIM_BATCH}
            if after is not None:
                params["after_rank"], params["after_id"] = after
            rows = conn.execute(_CANDIDATES[(dialect, after is not None)], params).all()
            for row in rows:
                if buildable is not None and row.branch not in buildable:
                    continue
                if not row.labels or set(row.labels.split(",")) <= server_labels:
                    return int(row.id)
            if len(rows) < CLAIM_BATCH:
                return None
            after = (rows[-1].rank, rows[-1].id)

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
                self._refuse(conn, job_id, server, fencing_token)
            assert row is not None
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
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                _COMPLETE[(server is not None, fencing_token is not None)],
                {
                    "job_id": job_id,
                    "lease_server": server,
                    "lease_token": fencing_token,
                    "new_status": status,
                    "finish_now": now,
                    "new_exit_code": exit_code,
                    "given_duration": duration,
                    "new_reason": reason,
                },
            ).one_or_none()
            if row is None:
                self._refuse(conn, job_id, server, fencing_token)
            assert row is not None
            append_event(
                conn,
                at=now,
                actor=actor,
                kind=f"job.{status}",
                subject=f"job:{job_id}",
                before={"status": "running", "server": row.server},
                after={
                    "status": status,
                    "exit_code": exit_code,
                    "duration": duration if duration is not None else row.duration,
                },
            )
            if manifest is not None:
                replace_manifest(conn, job_id, row.server, manifest)
            self._after_finish(conn, row, now=now, actor=actor)
            return job_from_row(row)

    def cancel_job(self, job_id: int, *, reason: str | None, now: float, actor: str) -> Job:
        """Cancel a queued, blocked or running job; its dependents become blocked."""
        with write_transaction(self.engine) as conn:
            current = self._row(conn, job_id)
            if current.status in FINISHED_STATUSES:
                raise Conflict(f"job {job_id} is already {current.status}")
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
                before=_snapshot(current),
                after={"status": "cancelled", "reason": row.reason},
            )
            self._after_finish(conn, row, now=now, actor=actor)
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
            blocker = _blocker(self._dependencies(conn, current.depends_on))
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
            self._unblock_dependents(conn, job_id, now=now, actor=actor)
            return job_from_row(row)

    def expire_leases(self, *, now: float, actor: str) -> list[Job]:
        """Requeue (attempt + 1) or fail every running job whose lease has run out."""
        return self._end_leases(
            jobs.c.lease_expires_at < now,
            why="lease expired on {server}",
            kind="job.lease_expired",
            now=now,
            actor=actor,
        )

    def end_leases_of(self, server: str, *, why: str, now: float, actor: str) -> list[Job]:
        """Requeue (attempt + 1) or fail every job running on a server that was lost."""
        return self._end_leases(
            jobs.c.server == server, why=why, kind="job.agent_lost", now=now, actor=actor
        )

    def _end_leases(
        self, condition: Any, *, why: str, kind: str, now: float, actor: str
    ) -> list[Job]:
        changed: list[Job] = []
        with write_transaction(self.engine) as conn:
            ended = conn.execute(
                select(jobs)
                .where(jobs.c.status == "running", condition)
                .order_by(jobs.c.id)
                .with_for_update(skip_locked=True)
            ).all()
            for current in ended:
                where = (
                    jobs.c.id == current.id,
                    jobs.c.status == "running",
                    jobs.c.fencing_token == current.fencing_token,
                )
                lost = why.format(server=current.server)
                if current.attempt < current.max_attempts:
                    values: dict[str, Any] = {
                        "status": "queued",
                        "attempt": current.attempt + 1,
                        "server": None,
                        "lease_expires_at": None,
                        "started_at": None,
                        "reason": f"{lost} (attempt {current.attempt} of "
                        f"{current.max_attempts}); requeued",
                    }
                else:
                    values = {
                        "status": "failed",
                        "lease_expires_at": None,
                        "finished_at": now,
                        "reason": f"{lost} on the last attempt "
                        f"({current.attempt} of {current.max_attempts})",
                    }
                row = conn.execute(
                    update(jobs).where(*where).values(**values).returning(*jobs.c)
                ).one_or_none()
                if row is None:
                    continue
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind=kind,
                    subject=f"job:{current.id}",
                    before=_snapshot(current) | {"attempt": current.attempt},
                    after={"status": row.status, "attempt": row.attempt, "reason": row.reason},
                )
                if row.status == "failed":
                    self._after_finish(conn, row, now=now, actor=actor)
                changed.append(job_from_row(row))
        return changed

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

    # -- dependency bookkeeping --------------------------------------------------------------

    def _after_finish(self, conn: Connection, row: Row[Any], *, now: float, actor: str) -> None:
        if row.status == "succeeded":
            conn.execute(_RELEASE_DEPENDENTS, {"finished_id": row.id})
        else:
            self._block_dependents(conn, row.id, row.status, now=now, actor=actor)

    def _block_dependents(
        self, conn: Connection, root: int, root_status: str, *, now: float, actor: str
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
                    root_reason
                    if parent == root
                    else f"dependency #{parent} is blocked: {root_reason}"
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

    def _unblock_dependents(self, conn: Connection, root: int, *, now: float, actor: str) -> None:
        # Dependencies always have smaller ids than their dependents, so ascending id order
        # visits every job after all the jobs it depends on.
        candidates = conn.execute(
            select(jobs.c.id, jobs.c.depends_on)
            .where(jobs.c.blocked_by == root, jobs.c.status == "blocked")
            .order_by(jobs.c.id)
        ).all()
        for candidate in candidates:
            blocker = _blocker(self._dependencies(conn, candidate.depends_on))
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

    # -- helpers -----------------------------------------------------------------------------

    def _dependencies(self, conn: Connection, depends_on: str) -> list[Row[Any]]:
        ids = _split_ints(depends_on)
        if not ids:
            return []
        return list(
            conn.execute(
                select(jobs.c.id, jobs.c.status, jobs.c.blocked_by, jobs.c.blocked_reason)
                .where(jobs.c.id.in_(ids))
                .order_by(jobs.c.id)
            )
        )

    def _row(self, conn: Connection, job_id: int) -> Row[Any]:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return row

    def _refuse(
        self, conn: Connection, job_id: int, server: str | None, fencing_token: int | None
    ) -> None:
        """Explain why a lease-holder write matched no row, as NotFound or Conflict."""
        row = self._row(conn, job_id)
        if row.status != "running":
            raise Conflict(f"job {job_id} is {row.status}, not running")
        if server is not None and row.server != server:
            raise Conflict(f"job {job_id} is leased to {row.server}, not {server}")
        raise Conflict(
            f"stale fencing token {fencing_token} for job {job_id}: "
            f"the current lease has token {row.fencing_token}"
        )
