"""Notifications: which notifiers hear of an alert, and the senders that drain the outbox.

The monitor queues a delivery for each notifier that wants an alert's opening or resolution
(its rules, its minimum severity, no silence in force) in the transaction that made the
change, so with several coordinators each is queued once; while an alert stays open and
unacknowledged, a notifier with ``repeat_minutes`` gets a reminder that often. Each
configured notifier has a sender thread of its own in every coordinator: it claims that
notifier's due deliveries by compare-and-set, sends each with the notifier's timeout and
records the outcome; a failure is retried with exponential backoff up to MAX_ATTEMPTS. A
notifier that hangs or refuses holds up only its own thread: never the monitor, never
another notifier.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import NotFound
from buildcoord.models import Alert, AlertDelivery, AlertSilence, Principal
from buildcoord.notifier_config import NotifierSettings
from buildcoord.notifiers import DeliveryFailed, send
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.store import Store

log = logging.getLogger("buildcoord.notifications")

MAX_ATTEMPTS = 8
"""Attempts before a delivery is given up (about an hour and a half of retries)."""
FIRST_RETRY_SECONDS = 30.0
LAST_RETRY_SECONDS = 3600.0
POLL_SECONDS = 1.0
"""How often each sender thread looks for due deliveries."""
BATCH = 20


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 30 s, doubling, ≤ 1 h."""
    return float(min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), LAST_RETRY_SECONDS))


class NotificationService:
    """Routing alerts to notifiers and sending what is due."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.notifiers = {notifier.name: notifier for notifier in settings.notifiers}

    def router(self) -> Callable[[Alert, str], Sequence[str]]:
        """The notifiers to tell of an alert's change, given the silences in force now."""
        now = self.clock.now()
        silences = self.store.list_silences(in_force_at=now.timestamp(), limit=1000)
        return lambda alert, event: self.wanting(alert, silences, now)

    def wanting(self, alert: Alert, silences: Sequence[AlertSilence], now: datetime) -> list[str]:
        """The notifiers that want ``alert``, unless a silence covers it."""
        if any(silence.covers(alert.rule, alert.subject, now) for silence in silences):
            return []
        return [
            name
            for name, notifier in self.notifiers.items()
            if notifier.wants(alert.rule, alert.severity)
        ]

    def queue_reminders(self) -> int:
        """Queue a reminder of every open, unacknowledged, unsilenced alert to each notifier
        with a ``repeat_minutes`` that has told nothing of it for that long (the monitor
        asks at each step); return how many were queued."""
        now = self.clock.now()
        silences = self.store.list_silences(in_force_at=now.timestamp(), limit=1000)
        queued = 0
        for name, notifier in self.notifiers.items():
            if notifier.repeat_minutes <= 0:
                continue

            def wanted(
                rule: str, subject: str, severity: str, n: NotifierSettings = notifier
            ) -> bool:
                if any(silence.covers(rule, subject, now) for silence in silences):
                    return False
                return n.wants(rule, severity)

            queued += self.store.queue_reminders(
                name,
                since=now.timestamp() - notifier.repeat_minutes * 60,
                now=now.timestamp(),
                wanted=wanted,
            )
        return queued

    def deliver_due(self, name: str, *, limit: int = BATCH) -> int:
        """Send up to ``limit`` of a notifier's due deliveries; return how many were sent."""
        notifier = self.notifiers[name]
        now = self.clock.now().timestamp()
        claimed = self.store.claim_deliveries(
            name, now=now, until=now + notifier.timeout_seconds + 30.0, limit=limit
        )
        sent = 0
        for delivery in claimed:
            try:
                receipt = None
                if delivery.event != "opened":
                    receipt = self.store.delivery_receipt(delivery.alert_id, name)
                receipt = send(
                    notifier,
                    self.store.get_alert(delivery.alert_id),
                    delivery.event,
                    receipt=receipt,
                )
            except Exception as error:  # DeliveryFailed, or a bug: recorded, retried, bounded
                failure = error if isinstance(error, DeliveryFailed) else _unexpected(error)
                attempts = delivery.attempts + 1
                now = self.clock.now().timestamp()
                retry_at = None if attempts >= MAX_ATTEMPTS else now + retry_delay(attempts)
                self.store.record_delivery_failed(
                    delivery.id, str(failure), now=now, retry_at=retry_at
                )
                log.warning(
                    "notifier %s, alert %d (%s): attempt %d failed: %s%s",
                    name,
                    delivery.alert_id,
                    delivery.event,
                    attempts,
                    failure,
                    "; given up" if retry_at is None else "",
                )
            else:
                self.store.record_delivery_sent(
                    delivery.id, now=self.clock.now().timestamp(), receipt=receipt
                )
                sent += 1
        return sent

    def deliveries(self, alert_id: int, *, by: Principal) -> list[AlertDelivery]:
        """An alert's deliveries: to whom, how many attempts, sent or the last error."""
        require_reader(by, "reading alerts")
        self.store.get_alert(alert_id)  # NotFound for an unknown alert
        return self.store.list_deliveries(alert_id)

    def test(self, name: str, *, by: Principal) -> str | None:
        """Send a test message through one notifier now; the failure's reason, or None."""
        require_operator(by, "testing notifiers")
        notifier = self._notifier(name)
        now = self.clock.now()
        sample = Alert(
            id=0,
            rule="test",
            subject=name,
            severity="warning",
            summary=f"a test of notifier {name}, sent by {by.actor}",
            details={},
            opened_at=now,
            last_seen_at=now,
            count=1,
            clear_since=None,
            resolved_at=None,
            acknowledged_at=None,
            acknowledged_by=None,
        )
        try:
            send(notifier, sample, "test")
        except DeliveryFailed as failure:
            return str(failure)
        return None

    def start(self) -> Callable[[], None]:
        """Run one sender thread per notifier; return what stops them (and waits)."""
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=self._run, args=(name, stop), name=f"buildcoord-notify-{name}", daemon=True
            )
            for name in self.notifiers
        ]
        for thread in threads:
            thread.start()

        def stop_and_wait() -> None:
            stop.set()
            for thread in threads:
                thread.join(timeout=15)

        return stop_and_wait

    def _run(self, name: str, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.deliver_due(name) > 0
            except Exception:  # a database hiccup: the next look tries again
                log.exception("notifier %s: delivering failed; retrying", name)
                busy = False
            if not busy:
                stop.wait(POLL_SECONDS)

    def _notifier(self, name: str) -> NotifierSettings:
        notifier = self.notifiers.get(name)
        if notifier is None:
            known = ", ".join(sorted(self.notifiers)) or "none is configured"
            raise NotFound(f"no notifier {name!r} ({known})")
        return notifier


def _unexpected(error: Exception) -> DeliveryFailed:
    log.error("sending a notification failed unexpectedly", exc_info=error)
    return DeliveryFailed(f"unexpected error: {type(error).__name__}")
