"""/api/v1/health, /api/v1/events and /api/v1/maintenance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from buildcoord import __version__
from buildcoord.models import Event
from buildcoord.services import maintenance
from buildcoord.services.authority import require_operator
from buildcoord.services.maintenance import StepReport
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import Cursor, limit_query

router = APIRouter(tags=["system"])


@router.get("/health", responses={503: {"description": "degraded: the reason says why"}})
def health(services: Services) -> JSONResponse:
    """Health probe, no token needed: 200 ``ok``, or 503 ``degraded`` with the reason."""
    report = services.system.health()
    body: dict[str, Any] = {
        "status": report.status,
        "version": __version__,
        "database": report.database,
    }
    if report.reason is not None:
        body["reason"] = report.reason
    return JSONResponse(body, status_code=200 if report.ok else 503)


@router.get("/events")
def events(
    services: Services,
    caller: Caller,
    subject: str | None = None,
    after: Cursor = 0,
    limit: int = limit_query(100, 1000),
) -> list[Event]:
    """Read the audit trail in order, optionally for one subject, after a cursor."""
    return services.system.events(
        subject=subject, after_id=after, limit=max(1, min(limit, 1000)), by=caller
    )


@router.post("/maintenance/step")
def step(services: Services, caller: Caller) -> StepReport:
    """Run one maintenance pass now (lease expiry, lock recovery, server status)."""
    require_operator(caller, "running maintenance")
    return maintenance.step(services, by=caller)
