"""/api/v1/locks: named locks and semaphores (names travel in bodies: any text is allowed)."""

from __future__ import annotations

from fastapi import APIRouter

from buildcoord.models import Lock, LockGrant, ReleasedLock
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import LockAcquireIn, LockReleaseIn, LockRenewIn, Released

router = APIRouter(prefix="/locks", tags=["locks"])


@router.get("")
def list_locks(services: Services, caller: Caller) -> list[Lock]:
    """List locks and their holders."""
    return services.locks.list_locks(by=caller)


@router.post("/acquire")
def acquire(body: LockAcquireIn, services: Services, caller: Caller) -> LockGrant:
    """Take a lease; 409 names the current holders."""
    return services.locks.acquire(
        body.name, body.holder, ttl=body.ttl, capacity=body.capacity, by=caller
    )


@router.post("/renew")
def renew(body: LockRenewIn, services: Services, caller: Caller) -> LockGrant:
    """Extend a lease."""
    return services.locks.renew(body.name, body.holder, token=body.token, ttl=body.ttl, by=caller)


@router.post("/release")
def release(body: LockReleaseIn, services: Services, caller: Caller) -> Released:
    """Release a lease (operators may force)."""
    released = services.locks.release(
        body.name, body.holder, token=body.token, force=body.force, by=caller
    )
    return Released(released=released)


@router.post("/recover")
def recover(services: Services, caller: Caller) -> list[ReleasedLock]:
    """Release every expired lease now."""
    return services.locks.recover_expired(by=caller)
