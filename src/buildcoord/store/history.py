"""Build history: one row per finished attempt of a job, read by prediction and statistics.

Its statements are prebuilt SQL on the driver's cursor, like the job tables' (job_queries):
every finished job records its attempt here, and through SQLAlchemy Core that record cost
about 480 µs a completion against 80 µs on the driver (SQLite, in process), which took a
quarter off the HTTP API's jobs/s in bench/queue.py. One style for the whole table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from buildcoord.models import DURATION_BUCKETS, BuildRecord, BuildResult, Job
from buildcoord.store.engine import Driver, driver_read, driver_transaction, sql
from buildcoord.store.job_queries import JOB_COLUMNS
from buildcoord.store.job_rows import job_from_row
from buildcoord.store.timestamps import from_epoch

RESULTS = frozenset({"succeeded", "failed", "cancelled"})
"""The job statuses whose attempt is recorded when the job finishes (``lost`` attempts are
recorded when their lease ends: ``record_lost``)."""

_COLUMNS = (
    'job_id, attempt, branch, build_key, server, "commit", queued_at, started_at, finished_at,'
    ' duration, queue_wait, result, hour_of_day, day_of_week, "trigger"'
)
"""The columns of a record, in the order record_from_row reads them."""

# The command the branch builds with now (no row: no such branch; NULL: no command).
BRANCH_COMMAND = sql("SELECT command FROM branches WHERE name = ?")

# One finished attempt (_COLUMNS in order); recording it twice (a hook run again) keeps the
# first, and returns no row.
RECORD = sql(
    f"INSERT INTO build_history ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (job_id, attempt) DO NOTHING RETURNING job_id"
)

# The most recently finished records, newest first. Parameters: limit.
RECENT = sql(
    f"SELECT {_COLUMNS} FROM build_history"
    " ORDER BY finished_at DESC, job_id DESC, attempt DESC LIMIT ?"
)

# The most recently finished records from a time on, newest first. Parameters: since, limit.
RECENT_SINCE = sql(
    f"SELECT {_COLUMNS} FROM build_history WHERE finished_at >= ?"
    " ORDER BY finished_at DESC, job_id DESC, attempt DESC LIMIT ?"
)

# Records finished at or after a time, in the order they finished. Parameters: since, limit.
FINISHED_SINCE = sql(
    f"SELECT {_COLUMNS} FROM build_history WHERE finished_at >= ?"
    " ORDER BY finished_at, job_id, attempt LIMIT ?"
)

# The build key of a branch's most recently started build.
LATEST_KEY = sql(
    "SELECT build_key FROM build_history WHERE branch = ? ORDER BY started_at DESC LIMIT 1"
)

# How many builds finished since a time, by result (on ix_build_history_finished_at).
# Parameters: since.
OUTCOME_COUNTS = sql(
    "SELECT result, count(*) FROM build_history WHERE finished_at >= ? GROUP BY result"
)

# Builds that finished in [start, end): passed, failed, and the passed ones' durations.
OUTCOMES_BETWEEN = sql(
    "SELECT COALESCE(SUM(CASE WHEN result = 'succeeded' THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN result = 'failed' THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN result = 'succeeded' THEN duration ELSE 0 END), 0)"
    " FROM build_history WHERE finished_at >= ? AND finished_at < ?"
)

# Count a recorded build into its branch's and result's totals. Parameters: branch, result,
# duration, then one 0 or 1 per DURATION_BUCKETS bound (whether it took at most that long).
_BUCKETS = [f"le_{bound:g}" for bound in DURATION_BUCKETS]
ADD_TO_TOTALS = sql(
    f"INSERT INTO build_totals (branch, result, count, duration_sum, {', '.join(_BUCKETS)})"
    f" VALUES (?, ?, 1, ?, {', '.join('?' for _ in _BUCKETS)})"
    " ON CONFLICT (branch, result) DO UPDATE SET count = build_totals.count + 1,"
    " duration_sum = build_totals.duration_sum + excluded.duration_sum, "
    + ", ".join(f"{column} = build_totals.{column} + excluded.{column}" for column in _BUCKETS)
)

# The branches with a build command (the ones agents build).
BUILT_BRANCHES = sql("SELECT name FROM branches WHERE command IS NOT NULL ORDER BY name")

# A branch's latest builds that passed or failed, newest first, on ix_build_history_branch
# (cancelled builds and lost attempts are no outcome of the code). Parameters: branch, limit.
LATEST_OUTCOMES = sql(
    f"SELECT {_COLUMNS} FROM build_history WHERE branch = ?"
    " AND result IN ('succeeded', 'failed')"
    " ORDER BY started_at DESC, job_id DESC, attempt DESC LIMIT ?"
)


# Jobs that finished in [since, until) after they had started, whose attempt has no history
# row (its after-finish recording was lost), oldest first, on ix_jobs_finished_at.
# Parameters: since, until, limit.
UNRECORDED = sql(
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE finished_at >= ? AND finished_at < ?"
    " AND status IN ('succeeded', 'failed', 'cancelled') AND started_at IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM build_history h"
    " WHERE h.job_id = jobs.id AND h.attempt = jobs.attempt)"
    " ORDER BY finished_at, id LIMIT ?"
)


def build_key(branch: str, command: str | None) -> str:
    """What identifies a kind of build: the branch and its build command, hashed (64 hex)."""
    return hashlib.sha256(f"{branch}\0{command or ''}".encode()).hexdigest()


def record_from_row(row: Sequence[Any]) -> BuildRecord:
    """Build a BuildRecord from a row of build_history's columns, in table (_COLUMNS) order."""
    (
        job_id,
        attempt,
        branch,
        key,
        server,
        commit,
        queued_at,
        started_at,
        finished_at,
        duration,
        queue_wait,
        result,
        hour_of_day,
        day_of_week,
        trigger,
    ) = row
    return BuildRecord(
        job_id=job_id,
        attempt=attempt,
        branch=branch,
        build_key=key,
        server=server,
        commit=commit,
        queued_at=from_epoch(queued_at),
        started_at=from_epoch(started_at),
        finished_at=from_epoch(finished_at),
        duration=duration,
        queue_wait=queue_wait,
        result=result,
        hour_of_day=hour_of_day,
        day_of_week=day_of_week,
        trigger=trigger,
    )


def record_attempt(
    db: Driver, job: Job, result: BuildResult, finished: float, duration: float
) -> BuildRecord | None:
    """Record one attempt of ``job`` (which had started) with its result, in ``db``'s
    transaction, and count it into its branch's totals; None if it is recorded already."""
    assert job.started_at is not None
    started = job.started_at.timestamp()
    queued = job.queued_at.timestamp()
    start = datetime.fromtimestamp(started, UTC)
    found = db.run(BRANCH_COMMAND, (job.branch,)).fetchone()
    key = build_key(job.branch, None if found is None else found[0])
    taken = max(0.0, duration)
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
        taken,
        max(0.0, started - queued),
        result,
        start.hour,
        start.weekday(),
        job.trigger,
    )
    if db.run(RECORD, values).fetchone() is None:
        return None
    flags = [1 if taken <= bound else 0 for bound in DURATION_BUCKETS]
    db.run(ADD_TO_TOTALS, (job.branch, result, taken, *flags))
    return BuildRecord(
        job_id=job.id,
        attempt=job.attempt,
        branch=job.branch,
        build_key=key,
        server=job.server,
        commit=job.commit,
        queued_at=job.queued_at,
        started_at=start,
        finished_at=from_epoch(finished),
        duration=taken,
        queue_wait=max(0.0, started - queued),
        result=result,
        hour_of_day=start.hour,
        day_of_week=start.weekday(),
        trigger=job.trigger,
    )


def record_lost(db: Driver, job: Job, *, now: float) -> None:
    """Record a running attempt whose lease ended (expired, or its agent was lost) and that
    is requeued: result ``lost``, finished when the loss was seen, lasting from its start
    until then — not a build's duration, but how long the attempt held the job (prediction
    learns nothing from it; the statistics count it per server)."""
    if job.started_at is None:
        return
    record_attempt(db, job, "lost", now, now - job.started_at.timestamp())


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
        with driver_transaction(self.engine) as db:
            return record_attempt(db, job, job.status, finished, duration)  # type: ignore[arg-type]

    def unrecorded_finished(self, since: float, until: float, limit: int) -> list[Job]:
        """Jobs finished in [since, until) after starting whose attempt is not in the history
        (at most ``limit``, oldest first): what a lost after-finish recording left out."""
        with driver_read(self.engine) as db:
            rows = db.run(UNRECORDED, (since, until, limit)).fetchall()
        return [job_from_row(row) for row in rows]

    def recent_builds(self, limit: int) -> list[BuildRecord]:
        """The ``limit`` most recently finished builds, oldest first (the order they finished)."""
        with driver_read(self.engine) as db:
            rows = db.run(RECENT, (limit,)).fetchall()
        return [record_from_row(row) for row in reversed(rows)]

    def recent_builds_since(self, since: float, limit: int) -> list[BuildRecord]:
        """The ``limit`` most recently finished builds from ``since`` on, oldest first."""
        with driver_read(self.engine) as db:
            rows = db.run(RECENT_SINCE, (since, limit)).fetchall()
        return [record_from_row(row) for row in reversed(rows)]

    def finished_since(self, since: float, limit: int = 10_000) -> list[BuildRecord]:
        """Builds that finished at or after ``since``, in the order they finished."""
        with driver_read(self.engine) as db:
            rows = db.run(FINISHED_SINCE, (since, limit)).fetchall()
        return [record_from_row(row) for row in rows]

    def latest_outcomes(self, limit: int) -> dict[str, list[BuildRecord]]:
        """Each built branch's ``limit`` latest passed or failed builds, newest first.

        One index walk per branch: what the monitor reads every step, whatever the history's
        size."""
        with driver_read(self.engine) as db:
            names = [name for (name,) in db.run(BUILT_BRANCHES).fetchall()]
            return {
                name: [
                    record_from_row(row)
                    for row in db.run(LATEST_OUTCOMES, (name, limit)).fetchall()
                ]
                for name in names
            }

    def outcome_counts(self, since: float) -> dict[str, int]:
        """How many builds finished at or after ``since``, by result."""
        with driver_read(self.engine) as db:
            return {result: int(count) for result, count in db.run(OUTCOME_COUNTS, (since,))}

    def outcomes_between(self, start: float, end: float) -> tuple[int, int, float]:
        """(passed, failed, the passed builds' summed duration) of builds that finished in
        [start, end)."""
        with driver_read(self.engine) as db:
            passed, failed, seconds = db.run(OUTCOMES_BETWEEN, (start, end)).fetchone()
        return int(passed), int(failed), float(seconds)

    def latest_key_of(self, branch: str) -> str | None:
        """The build key of a branch's most recently started build, or None if it has none."""
        with driver_read(self.engine) as db:
            found = db.run(LATEST_KEY, (branch,)).fetchone()
        return None if found is None else str(found[0])
