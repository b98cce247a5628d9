"""/api/v1/jobs: the queue."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Response, status

from buildcoord.models import ArtifactFile, Job, JobForecast, SubmittedJob
from buildcoord.web import responses
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import (
    BuildTokenIn,
    BuildTokenOut,
    CancelIn,
    ClaimIn,
    CompleteIn,
    JobIn,
    PriorityIn,
    RenewIn,
    RowId,
    limit_query,
)

router = APIRouter(prefix="/jobs", tags=["queue"])
JOB_FIELDS = tuple(field.name for field in dataclasses.fields(Job))


@router.post("", status_code=status.HTTP_201_CREATED)
def submit(body: JobIn, services: Services, caller: Caller, forecast: bool = True) -> SubmittedJob:
    """Queue a build of a branch at a commit.

    The answer is the job with ``forecast``: the server it is predicted to run on and its
    predicted start and finish (the running jobs and the queued ones ahead of it simulated
    with predicted durations), or a ``note`` saying why there is none. ``forecast=false``
    leaves it out (null), for callers queueing many jobs at once.
    """
    job = services.queue.submit(
        body.branch,
        body.commit,
        priority=body.priority,
        depends_on=body.depends_on,
        labels=body.labels,
        trigger=body.trigger,
        by=caller,
    )
    found = services.prediction.forecast_new(job) if forecast else None
    return SubmittedJob(**{field: getattr(job, field) for field in JOB_FIELDS}, forecast=found)


@router.get("")
def list_jobs(
    services: Services,
    caller: Caller,
    status: str | None = None,
    branch: str | None = None,
    server: str | None = None,
    limit: int = limit_query(200, 10_000),
    forecast: bool = True,
) -> Response:
    """List jobs: queued ones in claim order, others newest first.

    Each job also has ``forecast``: for a queued job its predicted server, start and finish,
    for a running one its expected remaining time (null for others, or with ``forecast=false``).
    """
    found = services.queue.list_jobs(
        status=status, branch=branch, server=server, limit=limit, by=caller
    )
    forecasts: dict[int, JobForecast] = {}
    if forecast and any(job.status in ("queued", "running") for job in found):
        forecasts = services.prediction.forecast()
    items = []
    for job in found:
        item = responses.plain(job)
        known = forecasts.get(job.id)
        item["forecast"] = None if known is None else responses.plain(known)
        items.append(item)
    return responses.rows(items)


@router.post("/claim", response_model=Job, responses={204: {"description": "nothing to claim"}})
def claim(body: ClaimIn, services: Services, caller: Caller) -> Response:
    """Lease the next job this server can run; 204 when there is none."""
    job = services.queue.claim_next(body.server, by=caller)
    return responses.record_or_no_content(job)


@router.get("/{job_id}")
def get(job_id: RowId, services: Services, caller: Caller) -> Job:
    """Show one job."""
    return services.queue.get(job_id, by=caller)


@router.post("/{job_id}/renew")
def renew(job_id: RowId, body: RenewIn, services: Services, caller: Caller) -> Job:
    """Extend the lease of a running job."""
    return services.queue.renew(
        job_id, server=body.server, fencing_token=body.fencing_token, by=caller
    )


@router.post("/{job_id}/build-token")
def build_token(
    job_id: RowId, body: BuildTokenIn, services: Services, caller: Caller
) -> BuildTokenOut:
    """A token for the build of a running job: it can append to that job's log, nothing else."""
    token = services.tokens.issue_build_token(
        job_id, server=body.server, fencing_token=body.fencing_token, by=caller
    )
    return BuildTokenOut(token=token)


@router.post("/{job_id}/complete", response_model=Job)
def complete(job_id: RowId, body: CompleteIn, services: Services, caller: Caller) -> Response:
    """Finish a running job."""
    job = services.queue.complete(
        job_id,
        status=body.status,
        exit_code=body.exit_code,
        duration=None if body.duration is None else float(body.duration),
        reason=body.reason,
        server=body.server,
        fencing_token=body.fencing_token,
        manifest=None
        if body.manifest is None
        else [ArtifactFile(**item.model_dump()) for item in body.manifest],
        artifact_root=body.artifact_root,
        by=caller,
    )
    return responses.record(job)


@router.post("/{job_id}/cancel")
def cancel(job_id: RowId, body: CancelIn, services: Services, caller: Caller) -> Job:
    """Cancel a job that has not finished."""
    return services.queue.cancel(job_id, reason=body.reason, by=caller)


@router.post("/{job_id}/priority")
def set_priority(job_id: RowId, body: PriorityIn, services: Services, caller: Caller) -> Job:
    """Change a queued or blocked job's priority (1 highest to 10); its place keeps its wait."""
    return services.queue.set_priority(job_id, body.priority, by=caller)


@router.post("/{job_id}/retry")
def retry(job_id: RowId, services: Services, caller: Caller) -> Job:
    """Queue a failed or cancelled job again."""
    return services.queue.retry(job_id, by=caller)
