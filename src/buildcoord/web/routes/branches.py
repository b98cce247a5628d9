"""/api/v1/branches: branches set up for building (names may contain '/')."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from buildcoord.models import Branch, BranchCheck
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import BranchChange, BranchCheckIn, BranchIn

router = APIRouter(prefix="/branches", tags=["branches"])


@router.post("", status_code=status.HTTP_201_CREATED)
def add(body: BranchIn, services: Services, caller: Caller) -> Branch:
    """Set up a branch: repository, build command, priority, labels, timeout."""
    return services.branches.add(
        body.name,
        repo=body.repo,
        command=body.command,
        priority=body.priority,
        labels=body.labels,
        timeout_seconds=None if body.timeout_seconds is None else float(body.timeout_seconds),
        retry_on_failure=body.retry_on_failure,
        tag_on_success=body.tag_on_success,
        push_tags=body.push_tags,
        auto_build=body.auto_build,
        schedule=body.schedule,
        enabled=body.enabled,
        build_now=body.build_now,
        by=caller,
    )


@router.post("/check-updates")
def check_updates(body: BranchCheckIn, services: Services, caller: Caller) -> list[BranchCheck]:
    """Read the remote tips of enabled auto-build branches now; queue each new one once."""
    return services.branch_watch.check_updates(body.branches, by=caller)


@router.post("/queue-all")
def queue_all(services: Services, caller: Caller) -> list[BranchCheck]:
    """Queue the remote tip of every enabled branch unless that commit has a job already."""
    return services.branch_watch.queue_all(by=caller)


@router.get("")
def list_branches(services: Services, caller: Caller) -> list[Branch]:
    """List branches."""
    return services.branches.list_branches(by=caller)


@router.get("/{name:path}")
def get(name: str, services: Services, caller: Caller) -> Branch:
    """Show one branch."""
    return services.branches.get(name, by=caller)


@router.patch("/{name:path}")
def update(name: str, body: BranchChange, services: Services, caller: Caller) -> Branch:
    """Change a branch's switches (tagging, retrying, auto-build, schedule, enabled)."""
    return services.branches.update(
        name,
        tag_on_success=body.tag_on_success,
        push_tags=body.push_tags,
        retry_on_failure=body.retry_on_failure,
        auto_build=body.auto_build,
        schedule=body.schedule,
        enabled=body.enabled,
        by=caller,
    )


@router.delete("/{name:path}", status_code=status.HTTP_204_NO_CONTENT)
def remove(name: str, services: Services, caller: Caller) -> Response:
    """Forget a branch (its jobs stay)."""
    services.branches.remove(name, by=caller)
    return Response(status_code=204)
