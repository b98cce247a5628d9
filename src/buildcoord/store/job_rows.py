"""Jobs in and out of the jobs table: the validated submission, and rows turned into ``Job``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from buildcoord.models import Job
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none


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


def join_values(values: Iterable[object]) -> str:
    """The comma-joined text a list column (depends_on, labels) stores."""
    return ",".join(str(value) for value in values)


def split_ints(text: str) -> tuple[int, ...]:
    """The job ids of a comma-joined column (depends_on)."""
    return tuple(int(part) for part in text.split(",") if part)


def split_labels(text: str) -> tuple[str, ...]:
    """The labels of a comma-joined labels column."""
    return tuple(part for part in text.split(",") if part)


def job_from_row(values: Sequence[Any]) -> Job:
    """Build a Job from a row of job_queries.JOB_COLUMNS (in that order)."""
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
        depends_on=split_ints(depends_on),
        labels=split_labels(labels),
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


def snapshot(job: Job) -> dict[str, Any]:
    """A job's lease state as events record it: status, server and fencing token."""
    return {"status": job.status, "server": job.server, "fencing_token": job.fencing_token}
