"""/api/v1/health, /api/v1/events and /api/v1/maintenance."""

from __future__ import annotations

from fastapi import APIRouter

from buildcoord import __version__
from buildcoord.models import Event
from buildcoord.services import maintenance
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.services.maintenance import StepReport
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import Cursor, limit_query

router = APIRouter(tags=["system"])


@router.get("/health")
def health(services: Services) -> dict[str, str]:
    """Liveness probe; needs no token."""
    return {"status": "ok", "version": __version__, "database": services.store.engine.dialect.name}


@router.get("/events")
def events(
    services: Services,
    caller: Caller,
    subject: str | None = None,
    after: Cursor = 0,
    limit: int = limit_query(100, 1000),
) -> list[Event]:
    """Read the audit trail in order, optionally for one subject, after a cursor."""
    require_reader(caller, "reading events")
    return services.store.events.list_events(
        subject=subject, after_id=after, limit=max(1, min(limit, 1000))
    )


@router.post("/maintenance/step")
def step(services: Services, caller: Caller) -> StepReport:
    """Run one maintenance pass now (lease expiry, lock recovery, server status)."""
    require_operator(caller, "running maintenance")
    return maintenance.step(services)
