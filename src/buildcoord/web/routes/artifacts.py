"""/api/v1/artifacts: builds' artifacts kept on agents, pins and cleanup; job manifests;
comparisons."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from buildcoord.models import ArtifactFile, ArtifactSet, ComparisonRecord
from buildcoord.web import responses
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import ArtifactCleanupOut, CleanupIn, JobFilter, RowId

router = APIRouter(tags=["artifacts"])


@router.get("/artifacts")
def list_sets(
    services: Services,
    caller: Caller,
    server: str | None = None,
    branch: str | None = None,
    include_removed: bool = False,
    limit: int = Query(default=100, ge=1, le=10_000),
) -> list[ArtifactSet]:
    """Artifact sets, newest first."""
    return services.artifacts.list_sets(
        server=server, branch=branch, include_removed=include_removed, limit=limit, by=caller
    )


@router.get(
    "/artifacts/latest",
    response_model=ArtifactSet,
    responses={204: {"description": "no such build"}},
)
def latest(services: Services, caller: Caller, branch: str, server: str) -> Response:
    """The newest successful build of a branch on a server that still has its artifacts."""
    return responses.record_or_no_content(services.artifacts.latest(branch, server, by=caller))


@router.post("/artifacts/cleanup")
def cleanup(body: CleanupIn, services: Services, caller: Caller) -> ArtifactCleanupOut:
    """Remove old builds' artifacts (each agent removes its own), or say what would go."""
    plan = services.artifacts.cleanup(
        keep=body.keep,
        server=body.server,
        branch=body.branch,
        dry_run=body.dry_run,
        by=caller,
    )
    return ArtifactCleanupOut(
        keep=plan.keep,
        dry_run=plan.dry_run,
        planned_bytes=plan.planned_bytes,
        removals=plan.removals,
        orders=plan.orders,
    )


@router.get("/artifacts/{job_id}")
def get(job_id: RowId, services: Services, caller: Caller) -> ArtifactSet:
    """One job's artifact set."""
    return services.artifacts.get(job_id, by=caller)


@router.put("/artifacts/{job_id}/pin")
def pin(job_id: RowId, services: Services, caller: Caller) -> ArtifactSet:
    """Keep a build's artifacts whatever retention says."""
    return services.artifacts.pin(job_id, True, by=caller)


@router.delete("/artifacts/{job_id}/pin")
def unpin(job_id: RowId, services: Services, caller: Caller) -> ArtifactSet:
    """Let retention remove a build's artifacts again."""
    return services.artifacts.pin(job_id, False, by=caller)


@router.get("/jobs/{job_id}/manifest")
def manifest(job_id: RowId, services: Services, caller: Caller) -> list[ArtifactFile]:
    """The artifact manifest the build reported."""
    return services.artifacts.manifest(job_id, by=caller)


@router.get("/comparisons")
def comparisons(
    services: Services, caller: Caller, branch: str | None = None, job: JobFilter = None
) -> list[ComparisonRecord]:
    """Reproducibility verdicts the coordinator recorded, newest first."""
    return services.comparisons.list_comparisons(branch=branch, job=job, by=caller)


@router.get("/comparisons/{comparison_id}")
def comparison(comparison_id: RowId, services: Services, caller: Caller) -> ComparisonRecord:
    """One recorded verdict."""
    return services.comparisons.get(comparison_id, by=caller)
