"""/api/v1/jobs/{id}/log: what a build said."""

from __future__ import annotations

from fastapi import APIRouter

from buildcoord.models import LogEntry
from buildcoord.web.auth import Caller, LogWriter, Services
from buildcoord.web.schemas import Count, Cursor, LogIn, RowId

router = APIRouter(prefix="/jobs/{job_id}", tags=["logs"])


@router.post("/log")
def append(job_id: RowId, body: LogIn, services: Services, caller: LogWriter) -> Count:
    """Append a batch of entries to a job's log (the lease holder, its build, or an operator)."""
    entries = [entry.model_dump() for entry in body.entries]
    count = services.logs.append(
        job_id, entries, server=body.server, fencing_token=body.fencing_token, by=caller
    )
    return Count(count=count)


@router.get("/log")
def entries(job_id: RowId, services: Services, caller: Caller, after: Cursor = 0) -> list[LogEntry]:
    """Read a job's log entries after a cursor (entry id)."""
    return services.logs.entries(job_id, after_id=after, by=caller)
