"""The client's calls about orders: work the coordinator gives one agent."""

from __future__ import annotations

from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import AgentOrder


class OrderEndpoints(Transport):
    """Orders: an agent's pending ones, its reports, one order."""

    def pending_orders(self, server: str) -> list[AgentOrder]:
        """The orders this agent has yet to carry out, oldest first."""
        return self._parse(list[AgentOrder], self._call("GET", f"/agents/{server}/orders"))

    def report_order(
        self,
        server: str,
        order_id: int,
        *,
        status: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> AgentOrder:
        """Say how an order went."""
        body = {"status": status, "result": result, "error": error}
        data = self._call("POST", f"/agents/{server}/orders/{order_id}", json=body)
        return self._parse(AgentOrder, data)

    def order(self, order_id: int) -> AgentOrder:
        """One order."""
        return self._parse(AgentOrder, self._call("GET", f"/orders/{order_id}"))
