"""The health monitor: every ``monitor_seconds`` it judges the fleet by its rules
(services/health_rules.py) and keeps the alerts in step with what they find.

A step reads one snapshot, raises every finding (opening its alert, or counting a repeat of
the open one) and clears each rule's other open alerts: an alert resolves once its condition
has stayed clear for the rule's resolve delay, so a flapping subject does not open and close
at every step. Several coordinators may step at once; the store keeps one open alert per
(rule, subject) and records each opening and resolution once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput, NotFound
from buildcoord.models import SYSTEM, Alert, Event, Job
from buildcoord.services.health_rules import RULE_NAMES, RULES, Rule, Snapshot
from buildcoord.services.notifications import NotificationService
from buildcoord.services.prediction import PredictionService
from buildcoord.services.servers import QUARANTINE_REASON_LIMIT
from buildcoord.store import Store

log = logging.getLogger("buildcoord.monitor")

STUCK_P90_FACTOR = 3.0
"""A running job is stuck past this many times its predicted p90 (or its timeout, if later)."""

RECENT_BUILDS = 5000
"""The most of the fleet's builds in black_hole's window the rules see (the latest)."""

BUILDS_IN_VIEW = 50
"""How many of a branch's latest builds the rules see (branch_broken looks that far back
for the branch's last pass)."""


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """What one monitor step changed."""

    opened: list[Alert] = field(default_factory=list)
    repeated: int = 0
    resolved: list[Alert] = field(default_factory=list)


def enabled_rules(settings: Settings) -> tuple[Rule, ...]:
    """The rules in force: all but those ``monitor_disabled_rules`` names (comma-separated)."""
    names = {name.strip() for name in settings.monitor_disabled_rules.split(",") if name.strip()}
    unknown = names - {rule.name for rule in RULES}
    if unknown:
        known = ", ".join(rule.name for rule in RULES)
        raise InvalidInput(
            f"setting monitor_disabled_rules: no rule {', '.join(sorted(unknown))} "
            f"(the rules are {known})"
        )
    return tuple(rule for rule in RULES if rule.name not in names)


def check_settings(settings: Settings) -> None:
    """Refuse settings that name a rule there is not (disabled rules, notifiers' rules)."""
    enabled_rules(settings)
    for notifier in settings.notifiers:
        unknown = sorted(set(notifier.rules) - set(RULE_NAMES))
        if unknown:
            raise InvalidInput(
                f"notifier {notifier.name!r}: no rule {', '.join(unknown)} "
                f"(the rules are {', '.join(RULE_NAMES)})"
            )


class Monitor:
    """Steps the rules and keeps alerts in step with them."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        notifications: NotificationService,
        prediction: PredictionService,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.notifications = notifications
        self.prediction = prediction
        self._events_after: int | None = None  # the event log's cursor (lock recoveries)
        self._started_at = clock.now().timestamp()
        check_settings(settings)
        self.rules = enabled_rules(settings)
        self._last_step_at: float | None = None

    def step_if_due(self) -> MonitorReport:
        """Maintenance: step when ``monitor_seconds`` have passed since this process's last."""
        now = self.clock.now().timestamp()
        if self._last_step_at is not None and now - self._last_step_at < (
            self.settings.monitor_seconds
        ):
            return MonitorReport()
        self._last_step_at = now
        return self.step()

    def step(self) -> MonitorReport:
        """Judge every rule on one snapshot; open, repeat and resolve alerts accordingly."""
        snapshot = self.snapshot()
        notify = self.notifications.router()
        opened: list[Alert] = []
        resolved: list[Alert] = []
        repeated = 0
        for rule in self.rules:
            resolve_after = rule.resolve_after_seconds
            new, repeats, gone = self.store.record_findings(
                rule.name,
                rule.check(self.settings, snapshot),
                now=snapshot.now,
                resolve_after=(
                    self.settings.resolve_after_seconds if resolve_after is None else resolve_after
                ),
                actor=SYSTEM.actor,
                notify=notify,
            )
            if new:
                log.warning("%s: %d alert(s) opened: %s", rule.name, len(new), _listed(new))
            if gone:
                log.info("%s: %d alert(s) resolved: %s", rule.name, len(gone), _listed(gone))
            opened += new
            resolved += gone
            repeated += repeats
            if rule.name == "black_hole" and self.settings.quarantine_black_holes:
                self._quarantine(new)
        self.notifications.queue_reminders()
        return MonitorReport(opened, repeated, resolved)

    def _quarantine(self, black_holes: list[Alert]) -> None:
        """Stop giving each newly found black hole new work (``servers resume`` ends it)."""
        for alert in black_holes:
            try:
                self.store.quarantine_server(
                    alert.subject,
                    f"alert {alert.id}: {alert.summary}"[:QUARANTINE_REASON_LIMIT],
                    now=self.clock.now().timestamp(),
                    actor=SYSTEM.actor,
                )
            except NotFound:  # removed since the snapshot
                continue
            log.warning("server %s quarantined: %s", alert.subject, alert.summary)

    def snapshot(self) -> Snapshot:
        """Read what the rules judge."""
        now = self.clock.now().timestamp()
        waiting, oldest = self.store.waiting_jobs()
        running = self.store.running_jobs()
        return Snapshot(
            now=now,
            servers=self.store.list_servers(),
            outcomes=self.store.latest_outcomes(
                max(self.settings.failure_rate_builds, BUILDS_IN_VIEW)
            ),
            waiting_jobs=waiting,
            oldest_waiting_since=oldest,
            recent_builds=self.store.recent_builds_since(
                now - self.settings.black_hole_window_minutes * 60, RECENT_BUILDS
            ),
            running_jobs=running,
            stuck_after=self._stuck_after(running),
            recovered_locks=self._recovered_locks(),
            unjudged_before=self._started_at if now < self._heartbeats_judged_from() else -math.inf,
        )

    def _heartbeats_judged_from(self) -> float:
        """A coordinator that starts judges older heartbeats only after every live agent has
        had time to send one to it (a restart is not the fleet going stale)."""
        settings = self.settings
        return self._started_at + settings.stale_after_seconds + settings.heartbeat_interval_seconds

    def _stuck_after(self, running: list[Job]) -> dict[int, float]:
        """max(3 x predicted p90, the branch's timeout) of each running job that has one."""
        p90 = self.prediction.p90_seconds(running)
        timeouts = {
            branch.name: branch.timeout_seconds
            for branch in self.store.list_branches()
            if branch.timeout_seconds
        }
        limits = {}
        for job in running:
            figures = [
                figure
                for figure in (
                    STUCK_P90_FACTOR * p90[job.id] if job.id in p90 else None,
                    timeouts.get(job.branch),
                )
                if figure
            ]
            if figures:
                limits[job.id] = max(figures)
        return limits

    def _recovered_locks(self) -> list[Event]:
        """The lock.expired_released events since the previous step (none at the first)."""
        if self._events_after is None:
            self._events_after = self.store.last_event_id()
            return []
        events = self.store.list_events(
            kind="lock.expired_released", after_id=self._events_after, limit=1000
        )
        if events:
            self._events_after = events[-1].id
        return events


def _listed(alerts: list[Alert], most: int = 5) -> str:
    """The first few alerts' subjects, for one log line however many there are."""
    shown = ", ".join(alert.subject for alert in alerts[:most])
    return shown if len(alerts) <= most else f"{shown} and {len(alerts) - most} more"
