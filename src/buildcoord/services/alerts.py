"""Alerts as people see them: listed, shown, acknowledged. The monitor opens and resolves them
(services/monitor.py); acknowledging says someone is on it."""

from __future__ import annotations

from buildcoord.clock import Clock
from buildcoord.errors import InvalidInput
from buildcoord.models import Alert, Principal
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.services.health_rules import RULES
from buildcoord.store import Store

LIST_LIMIT = 1000
"""The most alerts one listing returns."""


class AlertService:
    """Reading and acknowledging alerts."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def list_alerts(
        self,
        *,
        include_resolved: bool = False,
        rule: str | None = None,
        limit: int = 100,
        by: Principal,
    ) -> list[Alert]:
        """Alerts newest first: the open ones, or all with ``include_resolved``."""
        require_reader(by, "reading alerts")
        if rule is not None:
            _known_rule(rule)
        if not 1 <= limit <= LIST_LIMIT:
            raise InvalidInput(f"limit must be from 1 to {LIST_LIMIT}")
        return self.store.list_alerts(include_resolved=include_resolved, rule=rule, limit=limit)

    def get(self, alert_id: int, *, by: Principal) -> Alert:
        """One alert, open or resolved."""
        require_reader(by, "reading alerts")
        return self.store.get_alert(alert_id)

    def acknowledge(self, alert_id: int, *, by: Principal) -> Alert:
        """Mark an open alert as seen to by ``by``: notifications about it stop."""
        require_operator(by, "acknowledging alerts")
        return self.store.acknowledge_alert(
            alert_id, now=self.clock.now().timestamp(), actor=by.actor
        )


def _known_rule(rule: str) -> None:
    if rule not in {known.name for known in RULES}:
        known = ", ".join(known.name for known in RULES)
        raise InvalidInput(f"no rule {rule!r} (the rules are {known})")
