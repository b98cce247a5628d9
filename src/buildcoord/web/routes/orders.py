"""/api/v1/agents/{server}/orders and /api/v1/orders: work for agents beside builds."""

from __future__ import annotations

from fastapi import APIRouter, Query

from buildcoord.models import AgentOrder
from buildcoord.web.auth import Caller, Services
from buildcoord.web.schemas import OrderReport, RowId

router = APIRouter(tags=["orders"])


@router.get("/agents/{server}/orders")
def pending(server: str, services: Services, caller: Caller) -> list[AgentOrder]:
    """The orders this agent has yet to carry out, oldest first."""
    return services.orders.pending(server, by=caller)


@router.post("/agents/{server}/orders/{order_id}")
def report(
    server: str, order_id: RowId, body: OrderReport, services: Services, caller: Caller
) -> AgentOrder:
    """The agent reports how an order went (once)."""
    return services.orders.report(
        server, order_id, status=body.status, result=body.result, error=body.error, by=caller
    )


@router.get("/orders")
def list_orders(
    services: Services,
    caller: Caller,
    server: str | None = None,
    status: str | None = Query(default=None, pattern="^(pending|done|failed)$"),
) -> list[AgentOrder]:
    """Orders, oldest first."""
    return services.orders.list_orders(server=server, status=status, by=caller)


@router.get("/orders/{order_id}")
def get(order_id: RowId, services: Services, caller: Caller) -> AgentOrder:
    """One order."""
    return services.orders.get(order_id, by=caller)
