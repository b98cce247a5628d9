"""Job queue storage: submit, claim, lease, complete, cancel, retry, expire — each one transaction.

Every transition is a compare-and-set (``UPDATE ... WHERE <expected state>`` checked by row
count). Claims read candidates with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the
whole write transaction runs under ``BEGIN IMMEDIATE`` and the clause renders as nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, Engine, Row, bindparam, func, insert, select, update
from sqlalchemy.exc import NoResultFound

from buildcoord.errors import CommitKnown, Conflict, InvalidInput, NotFound
from buildcoord.models import FINISHED_STATUSES, ArtifactFile, Job
from buildcoord.store.artifacts import replace_manifest
from buildcoord.store.engine import (
    Driver,
    Sql,
    driver_transaction,
    read_transaction,
    sql,
    write_transaction,
)
from buildcoord.store.events import (
    APPEND_EVENT,
    EVENT_TABLE,
    append_event,
    event_values,
)
from buildcoord.store.schema import branches, job_dependencies, jobs
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

# How many claimable rows one claim reads at a time while looking for a label match.
CLAIM_BATCH = 16

RankFunction = Callable[[int, float], float]
"""(priority, queued_at epoch) -> claim rank; lower ranks are claimed first."""

# -- the hot path's SQL ---------------------------------------------------------------------------
#
# Claim and complete run these prebuilt statements on the driver's cursor (engine.Driver):
# building SQLAlchemy statements, and executing them through Core, cost several times the
# database work itself. Each is written once here, for both dialects unless noted.

# The columns a claim or completion returns, in the order _job reads them.
_JOB_COLUMNS = (
    'id, branch, "commit", priority, status, attempt, max_attempts, depends_on, labels,'
    " pending_deps, server, fencing_token, lease_expires_at, blocked_reason, reason,"
    ' created_at, queued_at, started_at, finished_at, exit_code, duration, "trigger"'
)

# The labels of the claiming server; no row means there is no such server.
_SERVER_LABELS = sql("SELECT labels FROM servers WHERE name = ?")

# Branches agents can build (they have a build command); agent claims skip the others.
_BUILDABLE_BRANCHES = sql("SELECT name FROM branches WHERE command IS NOT NULL")

# What a claim reads of each candidate, and the lease columns it sets, after "UPDATE jobs SET".
_CANDIDATE_COLUMNS = "id, rank, labels, branch, attempt, fencing_token"
_LEASE = (
    "status = 'running', server = ?, fencing_token = fencing_token + 1,"
    " lease_expires_at = ?, started_at = ?, reason = NULL"
)


def _same(column: str, value: str) -> str:
    """``column = value`` in a form no index can serve, for the compare-and-set of a write.

    A write by primary key must find its row through the primary key. With a plain
    ``status = 'queued'`` (or ``server = ?``), PostgreSQL without statistics (a new table,
    before autovacuum's first ANALYZE) chose ix_jobs_status_lease (or ix_jobs_server_status)
    and read every queued job (or every job of the server) for each write: 4 ms per claim
    with 12,000 queued, in the benchmark's first minute.
    """
    return f"{column} || '' = {value}"


_QUEUED = _same("status", "'queued'")
_RUNNING = _same("status", "'running'")


def _candidates(*, paged: bool) -> Sql:
    """The claim's candidate read, straight off ix_jobs_claim_order, CLAIM_BATCH rows a page.

    The index's predicate is written out verbatim: with a bound 'queued' the planner cannot
    match the partial index. SQLite is also told the index by name: without statistics it
    preferred ix_jobs_status_lease and sorted every queued row (and ANALYZE can flip the
    choice), so the plan no longer depends on what the planner guesses. PostgreSQL locks the
    rows it returns and skips rows other claims hold; SQLite's BEGIN IMMEDIATE already
    serialises claims. Parameters: [after_rank, after_rank, after_id,] batch.
    """
    where = "status = 'queued' AND pending_deps = 0"
    if paged:
        where += " AND (rank > ? OR (rank = ? AND id > ?))"
    tail = f" WHERE {where} ORDER BY rank, id LIMIT ?"
    return sql(
        f"SELECT {_CANDIDATE_COLUMNS} FROM jobs INDEXED BY ix_jobs_claim_order{tail}",
        postgresql=f"SELECT {_CANDIDATE_COLUMNS} FROM jobs{tail} FOR UPDATE SKIP LOCKED",
    )


_CANDIDATES = {paged: _candidates(paged=paged) for paged in (False, True)}

# PostgreSQL: the server's labels and the first page of candidates in one round trip. No row:
# no such server; one row of NULL candidate columns: nothing to claim. Parameters: batch,
# server.
_LABELS_AND_CANDIDATES = sql(
    "",
    postgresql=f"SELECT s.labels, c.* FROM servers s LEFT JOIN LATERAL"
    f" ({_CANDIDATES[False].postgresql.replace('%s', '?')}) c ON TRUE WHERE s.name = ?",
)

# Lease a queued job (compare-and-set on its status) and bump its fencing token.
# Parameters: server, lease_expires_at, started_at, id.
_CLAIM = sql(f"UPDATE jobs SET {_LEASE} WHERE id = ? AND {_QUEUED} RETURNING {_JOB_COLUMNS}")

# PostgreSQL: _CLAIM and its event in one round trip; the event is written only if the
# lease was taken. Parameters: those of _CLAIM, then event_values(...).
_CLAIM_RECORDING = sql(
    "",
    postgresql=f"WITH claimed AS (UPDATE jobs SET {_LEASE} WHERE id = ? AND {_QUEUED}"
    f" RETURNING {_JOB_COLUMNS}),"
    f" recorded AS (INSERT INTO {EVENT_TABLE} SELECT ?, ?, ?, ?, ?, ? FROM claimed)"
    " SELECT * FROM claimed",
)


def _complete_statement(*, by_server: bool, by_token: bool) -> Sql:
    """Finish the current lease (compare-and-set on status, and on holder and token if given).

    The duration, unless given, is now - started_at (never below 0). Parameters: status,
    finished_at, exit_code, reason, given duration, now, now, id[, server][, fencing_token].
    """
    where = f"id = ? AND {_RUNNING}"
    if by_server:
        where += f" AND {_same('server', '?')}"
    if by_token:
        where += " AND fencing_token = ?"
    return sql(
        "UPDATE jobs SET status = ?, finished_at = ?, exit_code = ?, reason = ?,"
        " lease_expires_at = NULL,"
        " duration = COALESCE(?, CASE WHEN ? - started_at > 0 THEN ? - started_at ELSE 0.0 END)"
        f" WHERE {where} RETURNING {_JOB_COLUMNS}"
    )


_COMPLETE = {
    (by_server, by_token): _complete_statement(by_server=by_server, by_token=by_token)
    for by_server in (False, True)
    for by_token in (False, True)
}

# A job succeeded: each job that depends on it waits for one dependency less.
_RELEASE_DEPENDENTS = sql(
    "UPDATE jobs SET pending_deps = pending_deps - 1"
    " WHERE id IN (SELECT job_id FROM job_dependencies WHERE depends_on_id = ?)"
)

# PostgreSQL: a completion's event and _RELEASE_DEPENDENTS in one round trip.
# Parameters: event_values(...), then the finished job's id.
_RECORD_AND_RELEASE = sql(
    "",
    postgresql=f"WITH recorded AS (INSERT INTO {EVENT_TABLE} VALUES (?, ?, ?, ?, ?, ?))"
    f" {_RELEASE_DEPENDENTS.postgresql.replace('%s', '?')}",
)

# What a refused lease-holder write is told about the job as it stands.
_LEASE_STATE = sql("SELECT status, server, fencing_token FROM jobs WHERE id = ?")


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job submission."""

    branch: str
    commit: str
    priority: int
    depends_on: tuple[int, ...]
    labels: tuple[str, ...]
    max_attempts: int
    trigger: str | None
    """What started it (models.TRIGGER_*, or a front-end's word); validated."""


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
        trigger=row.trigger,
    )


def _job(values: Sequence[Any]) -> Job:
    """Build a Job from the _JOB_COLUMNS of a prebuilt statement's row."""
    (
        job_id,
        branch,
        commit,
        priority,
        status,
        attempt,
        max_attempts,
        depends_on,
        labels,
        pending_deps,
        server,
        fencing_token,
        lease_expires_at,
        blocked_reason,
        reason,
        created_at,
        queued_at,
        started_at,
        finished_at,
        exit_code,
        duration,
        trigger,
    ) = values
    return Job(
        id=job_id,
        branch=branch,
        commit=commit,
        priority=priority,
        status=status,
        attempt=attempt,
        max_attempts=max_attempts,
        depends_on=_split_ints(depends_on),
        labels=_split_labels(labels),
        pending_dependencies=pending_deps,
        server=server,
        fencing_token=fencing_token,
        lease_expires_at=from_epoch_or_none(lease_expires_at),
        blocked_reason=blocked_reason,
        reason=reason,
        created_at=from_epoch(created_at),
        queued_at=from_epoch(queued_at),
        started_at=from_epoch_or_none(started_at),
        finished_at=from_epoch_or_none(finished_at),
        exit_code=exit_code,
        duration=duration,
        trigger=trigger,
    )


def _blocker(deps: Iterable[Row[Any]]) -> tuple[str, int] | None:
    """Return (reason, root job) of the first failed, cancelled or blocked dependency."""
    for dep in sorted(deps, key=lambda row: row.id):
        if dep.status in ("failed", "cancelled"):
            return f"dependency #{dep.id} {dep.status}", dep.id
        if dep.status == "blocked":
            return f"dependency #{dep.id} is blocked: {dep.blocked_reason}", dep.blocked_by
    return None


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

        ``buildable_only`` (agents) skips jobs of branches without a build command: those
        stay for a person to claim by hand.
        """
        with driver_transaction(self.engine) as db:
            first = db.run(_CANDIDATES[False], (CLAIM_BATCH,))
            return self._claim(
                db, first, server, server_labels, now, lease_seconds, actor, buildable_only
            )

    def claim_for_server(
        self,
        server: str,
        *,
        now: float,
        lease_seconds: float,
        actor: str,
        buildable_only: bool = False,
    ) -> Job | None:
        """Like claim_next_job, with the server's labels read in the claim's own transaction.

        Raises NotFound when there is no such server.
        """
        with driver_transaction(self.engine) as db:
            first: Iterable[Sequence[Any]]
            if db.postgresql:
                rows = db.run(_LABELS_AND_CANDIDATES, (CLAIM_BATCH, server)).fetchall()
                found = rows[0][0] if rows else None
                first = [row[1:] for row in rows if row[1] is not None]
            else:
                row = db.run(_SERVER_LABELS, (server,)).fetchone()
                found = None if row is None else row[0]
                first = () if found is None else db.run(_CANDIDATES[False], (CLAIM_BATCH,))
            if found is None:
                raise NotFound(f"server {server} does not exist")
            labels = frozenset(_split_labels(found))
            return self._claim(db, first, server, labels, now, lease_seconds, actor, buildable_only)

    def _claim(
        self,
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
        buildable = None
        if buildable_only:
            first = list(first)  # read the page before the cursor runs another statement
            buildable = frozenset(name for (name,) in db.run(_BUILDABLE_BRANCHES).fetchall())
            if not buildable:
                return None
        candidate = self._find_claimable(db, first, server_labels, buildable)
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
        event = event_values(
            now, actor, "job.claimed", f"job:{job_id}", {"status": "queued"}, expected
        )
        lease = (server, now + lease_seconds, now, job_id)
        if db.postgresql:
            values = db.run(_CLAIM_RECORDING, (*lease, *event)).fetchone()
        else:
            values = db.run(_CLAIM, lease).fetchone()
        if values is None:
            raise NoResultFound("No row was found when one was required")
        job = _job(values)
        if _snapshot(job) | {"attempt": job.attempt} != expected:
            raise RuntimeError(f"job {job_id} changed while this claim held it")
        if not db.postgresql:
            db.run(APPEND_EVENT, event)
        return job

    def _find_claimable(
        self,
        db: Driver,
        first: Iterable[Sequence[Any]],
        server_labels: frozenset[str],
        buildable: frozenset[str] | None,
    ) -> Sequence[Any] | None:
        """The first candidate (_CANDIDATE_COLUMNS) the server may take, paging past others."""
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
            if seen < CLAIM_BATCH or last is None:
                return None
            last_id, last_rank = last[0], last[1]
            rows = db.run(_CANDIDATES[True], (last_rank, last_rank, last_id, CLAIM_BATCH))

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
                self._refuse(Driver.on(conn), job_id, server, fencing_token)
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
        statement = _COMPLETE[(server is not None, fencing_token is not None)]
        if status == "succeeded" and manifest is None:
            # The common case needs no Core statement: all of it runs on the driver.
            with driver_transaction(self.engine) as db:
                values = db.run(statement, params).fetchone()
                if values is None:
                    self._refuse(db, job_id, server, fencing_token)
                job = _job(values)
                event = self._completion_event(job, duration, now=now, actor=actor)
                if db.postgresql:
                    db.run(_RECORD_AND_RELEASE, (*event, job_id))
                else:
                    db.run(APPEND_EVENT, event)
                    db.run(_RELEASE_DEPENDENTS, (job_id,))
                return job
        with write_transaction(self.engine) as conn:
            db = Driver.on(conn)
            values = db.run(statement, params).fetchone()
            if values is None:
                self._refuse(db, job_id, server, fencing_token)
            job = _job(values)
            db.run(APPEND_EVENT, self._completion_event(job, duration, now=now, actor=actor))
            if manifest is not None:
                assert job.server is not None  # a running job has a server
                replace_manifest(conn, job_id, job.server, manifest)
            self._after_finish(conn, job, now=now, actor=actor)
            return job

    def _completion_event(
        self, job: Job, duration: float | None, *, now: float, actor: str
    ) -> tuple[Any, ...]:
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

    # -- dependency bookkeeping --------------------------------------------------------------

    def _after_finish(
        self, conn: Connection, row: Row[Any] | Job, *, now: float, actor: str
    ) -> None:
        if row.status == "succeeded":
            Driver.on(conn).run(_RELEASE_DEPENDENTS, (row.id,))
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
        self, db: Driver, job_id: int, server: str | None, fencing_token: int | None
    ) -> NoReturn:
        """Explain why a lease-holder write matched no row, as NotFound or Conflict."""
        found = db.run(_LEASE_STATE, (job_id,)).fetchone()
        if found is None:
            raise NotFound(f"job {job_id} does not exist")
        status, holder, current_token = found
        if status != "running":
            raise Conflict(f"job {job_id} is {status}, not running")
        if server is not None and holder != server:
            raise Conflict(f"job {job_id} is leased to {holder}, not {server}")
        raise Conflict(
            f"stale fencing token {fencing_token} for job {job_id}: "
            f"the current lease has token {current_token}"
        )
