"""/api/v1/alerts: what the health monitor found; acknowledging and silencing it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from buildcoord.models import Alert, AlertDelivery, AlertSilence
from buildcoord.services.alerts import LIST_LIMIT
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import NotifierTest, RowId, SilenceIn, limit_query

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


@router.get("/silences")
def list_silences(
    services: Services,
    caller: Caller,
    include_ended: bool = Query(False, alias="all", description="ended silences too"),
) -> list[AlertSilence]:
    """Silences newest first: those in force, or every one with ``all``."""
    return services.alerts.list_silences(include_ended=include_ended, by=caller)


@router.post("/silences", status_code=status.HTTP_201_CREATED)
def silence(body: SilenceIn, services: Services, caller: Caller) -> AlertSilence:
    """Silence a rule's alerts, or one subject's, for ``seconds`` (operators)."""
    return services.alerts.silence(
        body.rule, body.subject, seconds=body.seconds, comment=body.comment, by=caller
    )


@router.delete("/silences/{silence_id}")
def unsilence(silence_id: RowId, services: Services, caller: Caller) -> AlertSilence:
    """End a silence now (operators)."""
    return services.alerts.unsilence(silence_id, by=caller)


@router.post("/notifiers/{name}/test")
def test_notifier(
    name: Annotated[str, Path(max_length=64)], services: Services, caller: Caller
) -> NotifierTest:
    """Send a test message through a configured notifier now (operators)."""
    error = services.notifications.test(name, by=caller)
    return NotifierTest(notifier=name, sent=error is None, error=error)


@router.get("/{alert_id}/deliveries")
def deliveries(alert_id: RowId, services: Services, caller: Caller) -> list[AlertDelivery]:
    """An alert's notifications: to which notifier, attempts, sent or the last error."""
    return services.notifications.deliveries(alert_id, by=caller)


@router.get("/{alert_id}")
def get(alert_id: RowId, services: Services, caller: Caller) -> Alert:
    """One alert, open or resolved."""
    return services.alerts.get(alert_id, by=caller)


@router.post("/{alert_id}/ack")
def acknowledge(alert_id: RowId, services: Services, caller: Caller) -> Alert:
    """Acknowledge an open alert (operators): someone is on it."""
    return services.alerts.acknowledge(alert_id, by=caller)
