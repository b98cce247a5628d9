"""/api/v1/alerts: what the health monitor found, and acknowledging it."""

from __future__ import annotations

from fastapi import APIRouter, Query

from buildcoord.models import Alert
from buildcoord.services.alerts import LIST_LIMIT
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import RowId, limit_query

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("")
def list_alerts(
    services: Services,
    caller: Caller,
    include_resolved: bool = Query(False, alias="all", description="resolved alerts too"),
    rule: str | None = Query(None, max_length=64),
    limit: int = limit_query(100, LIST_LIMIT),
) -> list[Alert]:
    """Alerts newest first: the open ones, or every one with ``all``."""
    return services.alerts.list_alerts(
        include_resolved=include_resolved, rule=rule, limit=limit, by=caller
    )


@router.get("/{alert_id}")
def get(alert_id: RowId, services: Services, caller: Caller) -> Alert:
    """One alert, open or resolved."""
    return services.alerts.get(alert_id, by=caller)


@router.post("/{alert_id}/ack")
def acknowledge(alert_id: RowId, services: Services, caller: Caller) -> Alert:
    """Acknowledge an open alert (operators): someone is on it."""
    return services.alerts.acknowledge(alert_id, by=caller)
