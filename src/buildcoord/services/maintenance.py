"""Background upkeep as steps: each does one pass and reports what it changed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from buildcoord.models import SYSTEM, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.streaks import FailureStreak

log = logging.getLogger("buildcoord.maintenance")


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one maintenance pass changed."""

    requeued_or_failed_jobs: list[int] = field(default_factory=list)
    released_locks: list[str] = field(default_factory=list)
    server_changes: list[tuple[str, str, str]] = field(default_factory=list)
    archived_messages: int = 0
    forgotten_webhook_deliveries: int = 0
    alerts_opened: list[int] = field(default_factory=list)
    alerts_resolved: list[int] = field(default_factory=list)

    @property
    def found_work(self) -> bool:
        """True when the pass changed anything."""
        return bool(
            self.requeued_or_failed_jobs
            or self.released_locks
            or self.server_changes
            or self.archived_messages
            or self.forgotten_webhook_deliveries
            or self.alerts_opened
            or self.alerts_resolved
        )


ARCHIVE_EVERY_SECONDS = 3600.0
RECORD_CHECK_SECONDS = 60.0
"""How often maintenance looks for finished builds whose history row is missing."""
_LAST_ARCHIVE_KEY = "maintenance.last_archive_at"


def step(coordinator: Coordinator, *, by: Principal = SYSTEM) -> StepReport:
    """One pass of upkeep.

    End the leases of lost agents, expire job leases, recover expired locks, record server
    status flips, step the health monitor and sample the fleet's trend when due; when the
    last archiving is an hour old, archive old read messages, forget webhook deliveries
    older than a week and agent sessions that ended over a day ago.
    """
    jobs = coordinator.agents.release_lost_agents() + coordinator.queue.expire_leases()
    locks = coordinator.locks.recover_expired()
    changes = coordinator.servers.record_status_changes()
    archived, forgotten = _archive_if_due(coordinator)
    _record_missing_if_due(coordinator)
    monitored = coordinator.monitor.step_if_due()
    coordinator.trends.sample_if_due()
    report = StepReport(
        requeued_or_failed_jobs=[job.id for job in jobs],
        released_locks=[f"{lock.name} ({lock.holder})" for lock in locks],
        server_changes=changes,
        archived_messages=archived,
        forgotten_webhook_deliveries=forgotten,
        alerts_opened=[alert.id for alert in monitored.opened],
        alerts_resolved=[alert.id for alert in monitored.resolved],
    )
    if by.kind == "operator":  # a run asked for on the API, not the loop's own every second
        coordinator.store.record_action(
            at=coordinator.clock.now().timestamp(),
            actor=by.actor,
            kind="maintenance.step",
            subject="maintenance",
            after={
                "jobs": len(report.requeued_or_failed_jobs),
                "locks": len(report.released_locks),
                "archived_messages": report.archived_messages,
            },
        )
    return report


_LAST_RECORD_CHECK_KEY = "maintenance.last_history_check_at"


def _record_missing_if_due(coordinator: Coordinator) -> int:
    """Record finished builds whose history row is missing, once a minute (every coordinator
    of a database shares the schedule)."""
    now = coordinator.clock.now().timestamp()
    last = coordinator.store.get_setting(_LAST_RECORD_CHECK_KEY)
    if last is not None and 0 <= now - float(last) < RECORD_CHECK_SECONDS:
        return 0
    coordinator.store.put_setting(_LAST_RECORD_CHECK_KEY, repr(now))
    return coordinator.prediction.record_missing()


def _archive_if_due(coordinator: Coordinator) -> tuple[int, int]:
    """(messages archived, webhook deliveries forgotten), or nothing done within the hour."""
    now = coordinator.clock.now().timestamp()
    last = coordinator.store.get_setting(_LAST_ARCHIVE_KEY)
    if last is not None and now - float(last) < ARCHIVE_EVERY_SECONDS:
        return 0, 0
    coordinator.store.put_setting(_LAST_ARCHIVE_KEY, repr(now))
    sessions = coordinator.agents.forget_old_sessions()
    if sessions:
        log.info("forgot %d agent sessions that ended over a day ago", sessions)
    return coordinator.messages.archive(), coordinator.branch_watch.forget_old_deliveries()


def start(coordinator: Coordinator) -> Callable[[], None]:
    """Run the maintenance loop in a thread of its own; return what stops it (and waits)."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_until,
        args=(coordinator, stop, coordinator.settings.maintenance_interval_seconds),
        name="buildcoord-maintenance",
        daemon=True,
    )
    thread.start()

    def stop_and_wait() -> None:
        stop.set()
        thread.join(timeout=10)

    return stop_and_wait


def run_until(coordinator: Coordinator, stop: threading.Event, interval: float) -> None:
    """Run step() every interval seconds until stop is set; a failing pass is logged, not fatal.

    At start, the prediction model is fed its history in a thread of its own. Each tick also
    starts the branch watch's pass when it is due (see branch_watch.py).
    After each pass, an SQLite database's WAL is checkpointed here, in this thread, so that
    requests' commits seldom reach the automatic checkpoint and its stall.
    """
    # The predictor learns its history once per process: do it now, off the request path.
    warm_up = threading.Thread(
        target=coordinator.prediction.warm_up, name="buildcoord-prediction-warm-up", daemon=True
    )
    warm_up.start()
    passes = FailureStreak(log, "maintenance pass")
    checkpoints = FailureStreak(log, "WAL checkpoint")
    while not stop.is_set():
        try:
            report = step(coordinator)
            if report.found_work:
                log.info("maintenance: %s", report)
            # Polling branches runs git (ls-remote) on its own cadence, in a thread of its
            # own, so a slow repository never delays the steps above.
            coordinator.branch_watch.start_if_due()
            passes.succeeded()
        except Exception as exc:
            passes.failed(exc)
        try:
            coordinator.store.checkpoint()
            checkpoints.succeeded()
        except Exception as exc:
            checkpoints.failed(exc)
        stop.wait(interval)
    coordinator.branch_watch.wait(timeout=5.0)
    warm_up.join(timeout=10.0)  # a load still running when asked to stop: wait for it a little
