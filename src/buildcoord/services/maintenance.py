"""Background upkeep as steps: each does one pass and reports what it changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from buildcoord.services.coordinator import Coordinator


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
