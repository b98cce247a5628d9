"""The client's calls about the coordinator itself: audit events, health, maintenance."""

from __future__ import annotations

from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import Event


class SystemEndpoints(Transport):
    """The audit trail, the health check and maintenance passes."""

    def list_events(
        self, *, subject: str | None = None, after: int = 0, limit: int = 100
    ) -> list[Event]:
        """Read the audit trail."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        if subject is not None:
            params["subject"] = subject
        return self._parse(list[Event], self._call("GET", "/events", params=params))

    def health(self) -> dict[str, Any]:
        """Ask whether the coordinator is up."""
        data: dict[str, Any] = self._call("GET", "/health")
        return data

    def maintenance_step(self) -> dict[str, Any]:
        """Run one maintenance pass now."""
        data: dict[str, Any] = self._call("POST", "/maintenance/step")
        return data
