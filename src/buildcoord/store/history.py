"""Build history: one row per finished attempt of a job, read by prediction and statistics."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, select

from buildcoord.models import BuildRecord, Job
from buildcoord.store.engine import driver_transaction, read_transaction, sql
from buildcoord.store.schema import build_history
from buildcoord.store.timestamps import from_epoch

# The command the branch builds with now (NULL: no branch set up, or one without a command).
_BRANCH_COMMAND = sql("SELECT command FROM branches WHERE name = ?")

# One finished attempt; recording it twice (a hook run again) keeps the first.
_RECORD = sql(
    'INSERT INTO build_history (job_id, attempt, branch, build_key, server, "commit", '
    "queued_at, started_at, finished_at, duration, queue_wait, result, hour_of_day, "
    'day_of_week, "trigger") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) '
    "ON CONFLICT (job_id, attempt) DO NOTHING"
)

RESULTS = frozenset({"succeeded", "failed", "cancelled"})


def build_key(branch: str, command: str | None) -> str:
    """What identifies a kind of build: the branch and its build command, hashed (64 hex)."""
    return hashlib.sha256(f"{branch}\0{command or ''}".encode()).hexdigest()


def record_from_row(row: Row[Any]) -> BuildRecord:
    """Build a BuildRecord from a row of build_history."""
    return BuildRecord(
        job_id=row.job_id,
        attempt=row.attempt,
        branch=row.branch,
        build_key=row.build_key,
        server=row.server,
        commit=row.commit,
        queued_at=from_epoch(row.queued_at),
        started_at=from_epoch(row.started_at),
        finished_at=from_epoch(row.finished_at),
        duration=row.duration,
        queue_wait=row.queue_wait,
        result=row.result,
        hour_of_day=row.hour_of_day,
        day_of_week=row.day_of_week,
        trigger=row.trigger,
    )


class HistoryStore:
    """SQL for build_history."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_finished(self, job: Job) -> BuildRecord | None:
        """Record a finished attempt that had started; None if it never ran or is recorded.

        The build key uses the branch's command at finish time, read in the same transaction.
        The duration is the one the agent reported, else finish minus start. The trigger is
        the job's (every attempt of a job has the trigger it was submitted with).
        """
        if job.status not in RESULTS or job.started_at is None or job.finished_at is None:
            return None
        started = job.started_at.timestamp()
        finished = job.finished_at.timestamp()
        duration = job.duration if job.duration is not None else finished - started
        queued = job.queued_at.timestamp()
        start = datetime.fromtimestamp(started, UTC)
        with driver_transaction(self.engine) as db:
            found = db.run(_BRANCH_COMMAND, (job.branch,)).fetchone()
            key = build_key(job.branch, None if found is None else found[0])
            values = (
                job.id,
                job.attempt,
                job.branch,
                key,
                job.server,
                job.commit,
                queued,
                started,
                finished,
                max(0.0, duration),
                max(0.0, started - queued),
                job.status,
                start.hour,
                start.weekday(),
                job.trigger,
            )
            if db.run(_RECORD, values).rowcount == 0:
                return None
        return BuildRecord(
            job_id=job.id,
            attempt=job.attempt,
            branch=job.branch,
            build_key=key,
            server=job.server,
            commit=job.commit,
            queued_at=job.queued_at,
            started_at=start,
            finished_at=job.finished_at,
            duration=max(0.0, duration),
            queue_wait=max(0.0, started - queued),
            result=job.status,  # type: ignore[arg-type]  # checked against RESULTS above
            hour_of_day=start.hour,
            day_of_week=start.weekday(),
            trigger=job.trigger,
        )

    def recent_builds(self, limit: int) -> list[BuildRecord]:
        """The ``limit`` most recently finished builds, oldest first (the order they finished)."""
        table = build_history
        newest = (
            select(table)
            .order_by(table.c.finished_at.desc(), table.c.job_id.desc(), table.c.attempt.desc())
            .limit(limit)
        )
        with read_transaction(self.engine) as conn:
            rows = conn.execute(newest).all()
        return [record_from_row(row) for row in reversed(rows)]

    def finished_since(self, since: float, limit: int = 10_000) -> list[BuildRecord]:
        """Builds that finished at or after ``since``, in the order they finished."""
        table = build_history
        query = (
            select(table)
            .where(table.c.finished_at >= since)
            .order_by(table.c.finished_at, table.c.job_id, table.c.attempt)
            .limit(limit)
        )
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
        return [record_from_row(row) for row in rows]

    def latest_key_of(self, branch: str) -> str | None:
        """The build key of a branch's most recently started build, or None if it has none."""
        query = (
            select(build_history.c.build_key)
            .where(build_history.c.branch == branch)
            .order_by(build_history.c.started_at.desc())
            .limit(1)
        )
        with read_transaction(self.engine) as conn:
            return conn.execute(query).scalar_one_or_none()
