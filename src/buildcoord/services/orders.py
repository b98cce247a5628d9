"""Orders: work the coordinator hands one agent beside builds, and what comes back.

An order is created by a service (retention, a success tag, a tag cleanup), fetched by the
addressed agent (its session says when there are some), carried out there, and reported
once. The report goes to the handler registered for the order's kind, which brings the
registry in line with what really happened on the agent's machine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from buildcoord.clock import Clock
from buildcoord.errors import InvalidInput
from buildcoord.models import AgentOrder, Principal
from buildcoord.services.authority import require_reader, require_self_or_operator
from buildcoord.store import Store

log = logging.getLogger("buildcoord.orders")

OrderHandler = Callable[[AgentOrder], None]


class OrderService:
    """Create, hand out and settle agent orders."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.handlers: dict[str, OrderHandler] = {}

    def create(self, server: str, kind: str, params: dict[str, Any], *, actor: str) -> AgentOrder:
        """Queue an order for server's agent."""
        return self.store.create_order(
            server, kind, params, now=self.clock.now().timestamp(), actor=actor
        )

    def pending(self, server: str, *, by: Principal) -> list[AgentOrder]:
        """The orders server's agent has yet to carry out, oldest first."""
        require_self_or_operator(by, server, "read orders")
        return self.store.list_orders(server=server, status="pending")

    def report(
        self,
        server: str,
        order_id: int,
        *,
        status: str,
        result: dict[str, Any] | None,
        error: str | None,
        by: Principal,
    ) -> AgentOrder:
        """The agent says how an order went; the registry follows."""
        require_self_or_operator(by, server, "report orders")
        if status not in ("done", "failed"):
            raise InvalidInput(f"invalid order status {status!r}: expected done or failed")
        if status == "failed" and not error:
            raise InvalidInput("a failed order needs an error")
        order = self.store.finish_order(
            order_id,
            server=server,
            status=status,
            result=result,
            error=error,
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )
        handler = self.handlers.get(order.kind)
        if handler is not None:
            handler(order)
        return order

    def get(self, order_id: int, *, by: Principal) -> AgentOrder:
        """One order."""
        require_reader(by, "reading orders")
        return self.store.get_order(order_id)

    def list_orders(
        self, *, server: str | None = None, status: str | None = None, by: Principal
    ) -> list[AgentOrder]:
        """Orders, oldest first."""
        require_reader(by, "reading orders")
        return self.store.list_orders(server=server, status=status)
