"""/api/v1/rollback: the registry of successful builds and their tags."""

from __future__ import annotations

from fastapi import APIRouter, Query

from buildcoord.models import GoodBuild
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import TagCleanupIn, TagCleanupOut

router = APIRouter(prefix="/rollback", tags=["rollback"])


@router.get("/builds")
def builds(
    services: Services,
    caller: Caller,
    branch: str | None = None,
    limit: int = Query(default=20, ge=1, le=10_000),
) -> list[GoodBuild]:
    """Successful builds with their tags, newest first."""
    return services.rollback.list_builds(branch, limit=limit, by=caller)


@router.get("/tags/{tag}")
def show(tag: str, services: Services, caller: Caller) -> GoodBuild:
    """One tag's registry entry."""
    return services.rollback.show(tag, by=caller)


@router.get("/last-good/{branch:path}")
def last_good(branch: str, services: Services, caller: Caller) -> GoodBuild:
    """A branch's last known good build."""
    return services.rollback.last_good(branch, by=caller)


@router.post("/cleanup")
def cleanup(body: TagCleanupIn, services: Services, caller: Caller) -> TagCleanupOut:
    """Delete all but the newest success tags of each branch (the agents delete them)."""
    plan = services.rollback.cleanup(
        keep=body.keep, branch=body.branch, dry_run=body.dry_run, by=caller
    )
    return TagCleanupOut(
        keep=plan.keep, dry_run=plan.dry_run, removals=plan.removals, orders=plan.orders
    )
