"""The client's calls to /alerts: listing, showing and acknowledging."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from buildcoord.client.transport import Transport
from buildcoord.models import Alert, AlertDelivery, AlertSilence


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

    def silence_alerts(
        self, rule: str, subject: str | None = None, *, seconds: float, comment: str = ""
    ) -> AlertSilence:
        """Silence a rule's alerts, or one subject's, for ``seconds``."""
        payload = {"rule": rule, "subject": subject, "seconds": float(seconds), "comment": comment}
        return self._parse(AlertSilence, self._call("POST", "/alerts/silences", json=payload))

    def end_silence(self, silence_id: int) -> AlertSilence:
        """End a silence now."""
        return self._parse(AlertSilence, self._call("DELETE", f"/alerts/silences/{silence_id}"))

    def list_silences(self, *, include_ended: bool = False) -> list[AlertSilence]:
        """Silences newest first: those in force, or all."""
        data = self._call("GET", "/alerts/silences", params={"all": include_ended})
        return self._parse(list[AlertSilence], data)

    def alert_deliveries(self, alert_id: int) -> list[AlertDelivery]:
        """An alert's notifications and how each went."""
        data = self._call("GET", f"/alerts/{alert_id}/deliveries")
        return self._parse(list[AlertDelivery], data)

    def test_notifier(self, name: str) -> str | None:
        """Send a test message through a notifier; the failure's reason, or None."""
        data = self._call("POST", f"/alerts/notifiers/{quote(name, safe='')}/test")
        return None if data["sent"] else str(data["error"])
