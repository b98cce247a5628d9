"""Background upkeep as steps: each does one pass and reports what it changed."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from buildcoord.services.coordinator import Coordinator

log = logging.getLogger("buildcoord.maintenance")


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one maintenance pass changed."""

    requeued_or_failed_jobs: list[int] = field(default_factory=list)
    released_locks: list[str] = field(default_factory=list)
    server_changes: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def found_work(self) -> bool:
        """True when the pass changed anything."""
        return bool(self.requeued_or_failed_jobs or self.released_locks or self.server_changes)


def step(coordinator: Coordinator) -> StepReport:
    """One pass: expire job leases, recover expired locks, record server status flips."""
    jobs = coordinator.queue.expire_leases()
    locks = coordinator.locks.recover_expired()
    changes = coordinator.servers.record_status_changes()
    return StepReport(
        requeued_or_failed_jobs=[job.id for job in jobs],
        released_locks=[f"{lock.name} ({lock.holder})" for lock in locks],
        server_changes=changes,
    )


def run_until(coordinator: Coordinator, stop: threading.Event, interval: float) -> None:
    """Run step() every interval seconds until stop is set; a failing pass is logged, not fatal."""
    while not stop.is_set():
        try:
            report = step(coordinator)
            if report.found_work:
                log.info("maintenance: %s", report)
        except Exception:
            log.exception("maintenance pass failed; retrying in %.1f s", interval)
        stop.wait(interval)
