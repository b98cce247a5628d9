"""The client's calls to /alerts: listing, showing and acknowledging."""

from __future__ import annotations

from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import Alert


class AlertEndpoints(Transport):
    """What the health monitor found."""

    def list_alerts(
        self, *, include_resolved: bool = False, rule: str | None = None, limit: int = 100
    ) -> list[Alert]:
        """Alerts newest first: the open ones, or all."""
        params: dict[str, Any] = {"all": include_resolved, "limit": limit}
        if rule is not None:
            params["rule"] = rule
        return self._parse(list[Alert], self._call("GET", "/alerts", params=params))

    def get_alert(self, alert_id: int) -> Alert:
        """One alert, open or resolved."""
        return self._parse(Alert, self._call("GET", f"/alerts/{alert_id}"))

    def acknowledge_alert(self, alert_id: int) -> Alert:
        """Acknowledge an open alert."""
        return self._parse(Alert, self._call("POST", f"/alerts/{alert_id}/ack"))
