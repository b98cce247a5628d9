"""Job logs: ordered structured entries, appended in batches by the lease holder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, insert, select

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import LogEntry
from buildcoord.store import job_queries as queries
from buildcoord.store.engine import Driver, read_transaction, write_transaction
from buildcoord.store.schema import job_logs
from buildcoord.store.timestamps import from_epoch


class LogStore:
    """SQL for job logs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append_entries(
        self,
        job_id: int,
        entries: Sequence[dict[str, Any]],
        *,
        server: str | None,
        fencing_token: int | None,
    ) -> int:
        """Append entries (dicts with at, kind, level, message, details) to a job's log.

        With server or token given, only the current lease holder may write (a late writer
        whose lease was taken over, or whose job finished, is refused); the rows carry the
        job's current attempt.
        Log lines are not events: the log is itself the record.
        """
        with write_transaction(self.engine) as conn:
            job = Driver.within(conn).run(queries.LEASE_STATE, (job_id,)).fetchone()
            if job is None:
                raise NotFound(f"job {job_id} does not exist")
            status, holder, current_token, attempt = job
            if server is not None and (holder != server or status != "running"):
                raise Conflict(f"job {job_id} is not running on {server}")
            if fencing_token is not None and status != "running":
                raise Conflict(f"job {job_id} is not running")
            if fencing_token is not None and current_token != fencing_token:
                raise Conflict(
                    f"stale fencing token {fencing_token} for job {job_id}: "
                    f"the current lease has token {current_token}"
                )
            if entries:
                conn.execute(
                    insert(job_logs),
                    [
                        {
                            "job_id": job_id,
                            "attempt": attempt,
                            "at": entry["at"],
                            "kind": entry["kind"],
                            "level": entry["level"],
                            "message": entry["message"],
                            "details": None
                            if entry.get("details") is None
                            else json.dumps(entry["details"], sort_keys=True),
                        }
                        for entry in entries
                    ],
                )
            return len(entries)

    def list_entries(self, job_id: int, *, after_id: int = 0, limit: int = 5000) -> list[LogEntry]:
        """Return a job's log entries in order, after a cursor."""
        with read_transaction(self.engine) as conn:
            if Driver.within(conn).run(queries.JOB_EXISTS, (job_id,)).fetchone() is None:
                raise NotFound(f"job {job_id} does not exist")
            rows = conn.execute(
                select(job_logs)
                .where(job_logs.c.job_id == job_id, job_logs.c.id > after_id)
                .order_by(job_logs.c.id)
                .limit(limit)
            ).all()
        return [
            LogEntry(
                id=row.id,
                job_id=row.job_id,
                attempt=row.attempt,
                at=from_epoch(row.at),
                kind=row.kind,
                level=row.level,
                message=row.message,
                details=None if row.details is None else json.loads(row.details),
            )
            for row in rows
        ]
