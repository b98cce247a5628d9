"""The fleet's trend: a sample each minute (kept 24 hours) and each hour (kept 30 days).

Maintenance asks every second; when a minute has ended, the sample of that minute is taken:
the gauges as they are now (servers online and registered, jobs queued, running, blocked)
and the builds that finished in it. When an hour has ended, its minutes are summed up into
an hour sample, and samples past their keeping are deleted. The tables' primary key makes
each sample once, whichever coordinator takes it; they stay bounded (about 1,440 minute
rows and 720 hour rows).
"""

from __future__ import annotations

import math

from buildcoord.clock import Clock
from buildcoord.errors import InvalidInput
from buildcoord.models import FleetSample, Principal
from buildcoord.services.authority import require_reader
from buildcoord.services.servers import ServerService
from buildcoord.store import Store
from buildcoord.store.fleet_samples import SampleFigures

MINUTE = 60.0
HOUR = 3600.0
KEEP_MINUTES_SECONDS = 86_400.0
KEEP_HOURS_SECONDS = 30 * 86_400.0
WINDOWS = {"24h": ("minute", KEEP_MINUTES_SECONDS), "30d": ("hour", KEEP_HOURS_SECONDS)}


class TrendService:
    """Taking, rolling up, pruning and reading the fleet's samples."""

    def __init__(self, store: Store, clock: Clock, servers: ServerService) -> None:
        self.store = store
        self.clock = clock
        self.servers = servers
        self._sampled_minute: float | None = None

    def sample_if_due(self) -> bool:
        """Maintenance: take the sample of the minute that just ended, roll up the hour that
        just ended; whether a sample was stored by this call."""
        now = self.clock.now().timestamp()
        minute = math.floor(now / MINUTE) * MINUTE
        if self._sampled_minute is None:
            self._sampled_minute = minute  # a partial first minute is not a sample
            return False
        if minute <= self._sampled_minute:
            return False
        start = minute - MINUTE
        self._sampled_minute = minute
        stored = self.store.record_fleet_sample("minute", start, self._figures(start, minute))
        hour = math.floor(minute / HOUR) * HOUR
        if math.floor(start / HOUR) * HOUR < hour:  # the minute closed an hour
            self.store.roll_up_fleet_hour(hour - HOUR)
            self.store.prune_fleet_samples(
                minutes_before=now - KEEP_MINUTES_SECONDS, hours_before=now - KEEP_HOURS_SECONDS
            )
        return stored

    def samples(self, window: str, *, by: Principal) -> list[FleetSample]:
        """The samples of the last 24 hours (a minute each) or 30 days (an hour each)."""
        require_reader(by, "reading trends")
        if window not in WINDOWS:
            raise InvalidInput(f"window must be one of {', '.join(WINDOWS)}")
        period, span = WINDOWS[window]
        return self.store.list_fleet_samples(period, self.clock.now().timestamp() - span)

    def _figures(self, start: float, end: float) -> SampleFigures:
        now = self.clock.now().timestamp()
        records = self.store.list_servers()
        online = sum(
            1
            for record in records
            if self.servers.liveness(record.last_heartbeat_at, now) == "online"
        )
        jobs = self.store.count_jobs_by_status()
        passed, failed, seconds = self.store.outcomes_between(start, end)
        return SampleFigures(
            servers_online=float(online),
            servers_total=float(len(records)),
            queued=float(jobs.get("queued", 0)),
            running=float(jobs.get("running", 0)),
            blocked=float(jobs.get("blocked", 0)),
            passed=passed,
            failed=failed,
            duration_sum=seconds,
        )
