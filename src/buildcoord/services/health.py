"""The fleet at a glance (the seed's health dashboard, working): servers online and their
figures, build success over 24 hours and 7 days, each branch's recent durations, the queue,
open alerts. Every figure is read from the database, so every coordinator answers alike."""

from __future__ import annotations

import math

from buildcoord.clock import Clock
from buildcoord.models import (
    BranchHealth,
    BuildRecord,
    FleetHealth,
    Principal,
    Server,
    StoreFigures,
)
from buildcoord.services.authority import require_reader
from buildcoord.services.monitor import BUILDS_IN_VIEW
from buildcoord.services.servers import ServerService
from buildcoord.store import Store

DAY = 86_400.0


class HealthService:
    """Fleet health figures."""

    def __init__(self, store: Store, clock: Clock, servers: ServerService) -> None:
        self.store = store
        self.clock = clock
        self.servers = servers

    def scrape(self, *, by: Principal) -> tuple[StoreFigures, list[Server]]:
        """What /metrics exports: the database's figures and every server now."""
        require_reader(by, "reading metrics")
        return self.store.read_figures(), self.servers.list_servers(by=by)

    def fleet(self, *, by: Principal) -> FleetHealth:
        """Servers, outcomes, branches, queue depth and open alerts, now."""
        require_reader(by, "reading fleet health")
        now = self.clock.now()
        servers = self.servers.list_servers(by=by)
        day = self.store.outcome_counts(now.timestamp() - DAY)
        week = self.store.outcome_counts(now.timestamp() - 7 * DAY)
        jobs = self.store.count_jobs_by_status()
        alerts = self.store.count_open_alerts()
        branches = tuple(
            _branch(name, builds)
            for name, builds in sorted(self.store.latest_outcomes(BUILDS_IN_VIEW).items())
        )
        return FleetHealth(
            at=now,
            servers_online=sum(1 for server in servers if server.status in ("online", "busy")),
            servers_total=len(servers),
            servers=tuple(servers),
            builds_24h=_builds(day),
            success_rate_24h=_rate(day),
            builds_7d=_builds(week),
            success_rate_7d=_rate(week),
            branches=branches,
            queued=jobs.get("queued", 0),
            running=jobs.get("running", 0),
            blocked=jobs.get("blocked", 0),
            alerts_open=sum(alerts.values()),
            alerts_critical=alerts.get("critical", 0),
        )


def _builds(counts: dict[str, int]) -> int:
    """Finished builds: every result but a lost attempt (its job was requeued, not ended)."""
    return sum(count for result, count in counts.items() if result != "lost")


def _rate(counts: dict[str, int]) -> float | None:
    """Passed / (passed + failed); cancelled builds count for neither."""
    passed, failed = counts.get("succeeded", 0), counts.get("failed", 0)
    return None if passed + failed == 0 else round(passed / (passed + failed), 4)


def _branch(name: str, builds: list[BuildRecord]) -> BranchHealth:
    passed = sorted(build.duration for build in builds if build.result == "succeeded")
    counts = {"succeeded": len(passed), "failed": len(builds) - len(passed)}
    return BranchHealth(
        branch=name,
        builds=len(builds),
        success_rate=_rate(counts),
        mean_seconds=round(sum(passed) / len(passed), 1) if passed else None,
        p90_seconds=round(passed[math.ceil(0.9 * len(passed)) - 1], 1) if passed else None,
        last_result=builds[0].result if builds else None,
    )
