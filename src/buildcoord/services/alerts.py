"""Alerts as people see them: listed, shown, acknowledged, silenced. The monitor opens and
resolves them (services/monitor.py); acknowledging says someone is on it; a silence (of a
rule, or of one subject of it, for a while) keeps them recorded but marked ``silenced``, and
nobody is notified of a silenced alert."""

from __future__ import annotations

from dataclasses import replace

from buildcoord import validation
from buildcoord.clock import Clock
from buildcoord.errors import InvalidInput
from buildcoord.models import Alert, AlertSilence, Principal
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.services.health_rules import RULES
from buildcoord.store import Store

LIST_LIMIT = 1000
"""The most alerts one listing returns."""

MAX_SILENCE_SECONDS = 90 * 86_400.0
"""The longest silence: a rule silenced for longer should be disabled in the configuration."""

SUBJECT_LIMIT = 200
COMMENT_LIMIT = 500


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
        found = self.store.list_alerts(include_resolved=include_resolved, rule=rule, limit=limit)
        return self._marked(found)

    def get(self, alert_id: int, *, by: Principal) -> Alert:
        """One alert, open or resolved."""
        require_reader(by, "reading alerts")
        return self._marked([self.store.get_alert(alert_id)])[0]

    def acknowledge(self, alert_id: int, *, by: Principal) -> Alert:
        """Mark an open alert as seen to by ``by``: notifications about it stop."""
        require_operator(by, "acknowledging alerts")
        return self.store.acknowledge_alert(
            alert_id, now=self.clock.now().timestamp(), actor=by.actor
        )

    def silence(
        self,
        rule: str,
        subject: str | None = None,
        *,
        seconds: float,
        comment: str = "",
        by: Principal,
    ) -> AlertSilence:
        """Silence a rule's alerts, or one subject's, for ``seconds`` (operators)."""
        require_operator(by, "silencing alerts")
        _known_rule(rule)
        if subject is not None:
            validation.text(subject, what="alert subject", maximum=SUBJECT_LIMIT)
        validation.positive(seconds, what="silence duration", maximum=MAX_SILENCE_SECONDS)
        validation.text(comment, what="comment", maximum=COMMENT_LIMIT, required=False)
        now = self.clock.now().timestamp()
        return self.store.add_silence(
            rule, subject, until=now + seconds, comment=comment, now=now, actor=by.actor
        )

    def unsilence(self, silence_id: int, *, by: Principal) -> AlertSilence:
        """End a silence now (operators)."""
        require_operator(by, "ending silences")
        return self.store.end_silence(silence_id, now=self.clock.now().timestamp(), actor=by.actor)

    def list_silences(self, *, include_ended: bool = False, by: Principal) -> list[AlertSilence]:
        """Silences newest first: those in force, or every one."""
        require_reader(by, "reading silences")
        at = None if include_ended else self.clock.now().timestamp()
        return self.store.list_silences(in_force_at=at, limit=LIST_LIMIT)

    def _marked(self, found: list[Alert]) -> list[Alert]:
        """The alerts, each marked silenced when a silence in force covers it."""
        now = self.clock.now()
        silences = self.store.list_silences(in_force_at=now.timestamp(), limit=LIST_LIMIT)
        if not silences:
            return found
        return [
            replace(alert, silenced=True)
            if any(silence.covers(alert.rule, alert.subject, now) for silence in silences)
            else alert
            for alert in found
        ]


def _known_rule(rule: str) -> None:
    if rule not in {known.name for known in RULES}:
        known = ", ".join(known.name for known in RULES)
        raise InvalidInput(f"no rule {rule!r} (the rules are {known})")
