"""The fleet's trend samples: a row per minute (kept a day) and per hour (kept 30 days)."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Engine

from buildcoord.models import FleetSample
from buildcoord.store.engine import driver_read, driver_transaction, sql
from buildcoord.store.timestamps import from_epoch

_COLUMNS = (
    "period, at, servers_online, servers_total, queued, running, blocked, passed, failed,"
    " duration_sum"
)

# One sample, once per (period, at). Parameters: _COLUMNS in order.
_RECORD = sql(
    f"INSERT INTO fleet_samples ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (period, at) DO NOTHING"
)

# The minutes of an hour, summed up: gauges averaged, builds added. Parameters: start, end.
_HOUR_OF_MINUTES = sql(
    "SELECT count(*), avg(servers_online), avg(servers_total), avg(queued), avg(running),"
    " avg(blocked), sum(passed), sum(failed), sum(duration_sum) FROM fleet_samples"
    " WHERE period = 'minute' AND at >= ? AND at < ?"
)

# Parameters: period, before.
_PRUNE = sql("DELETE FROM fleet_samples WHERE period = ? AND at < ?")

# Parameters: period, since.
_LIST = sql(f"SELECT {_COLUMNS} FROM fleet_samples WHERE period = ? AND at >= ? ORDER BY at")


class SampleFigures(NamedTuple):
    """What one sample holds (_COLUMNS after period and at)."""

    servers_online: float
    servers_total: float
    queued: float
    running: float
    blocked: float
    passed: int
    failed: int
    duration_sum: float


class FleetSampleStore:
    """SQL for the trend tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_sample(self, period: str, at: float, figures: SampleFigures) -> bool:
        """Store the (period, at) sample unless it is stored; whether this call stored it."""
        with driver_transaction(self.engine, appends_events=False) as db:
            return db.run(_RECORD, (period, at, *figures)).rowcount == 1

    def roll_up_hour(self, start: float) -> bool:
        """Store the hour from ``start`` as its minutes' sum; False if it had none or was
        stored already."""
        with driver_transaction(self.engine, appends_events=False) as db:
            row = db.run(_HOUR_OF_MINUTES, (start, start + 3600)).fetchone()
            if not row or not row[0]:
                return False
            _count, online, total, queued, running, blocked, passed, failed, seconds = row
            figures = SampleFigures(
                servers_online=float(online),
                servers_total=float(total),
                queued=float(queued),
                running=float(running),
                blocked=float(blocked),
                passed=int(passed or 0),
                failed=int(failed or 0),
                duration_sum=float(seconds or 0),
            )
            return db.run(_RECORD, ("hour", start, *figures)).rowcount == 1

    def prune_samples(self, *, minutes_before: float, hours_before: float) -> int:
        """Delete minute samples older than a day and hour samples older than 30 days."""
        with driver_transaction(self.engine, appends_events=False) as db:
            gone = db.run(_PRUNE, ("minute", minutes_before)).rowcount
            return gone + db.run(_PRUNE, ("hour", hours_before)).rowcount

    def list_samples(self, period: str, since: float) -> list[FleetSample]:
        """The period's samples from ``since`` on, oldest first."""
        with driver_read(self.engine) as db:
            return [_sample(row) for row in db.run(_LIST, (period, since)).fetchall()]


def _sample(row: Any) -> FleetSample:
    period, at, online, total, queued, running, blocked, passed, failed, duration_sum = row
    return FleetSample(
        period=period,
        at=from_epoch(at),
        servers_online=round(online, 2),
        servers_total=round(total, 2),
        queued=round(queued, 2),
        running=round(running, 2),
        blocked=round(blocked, 2),
        passed=passed,
        failed=failed,
        mean_duration_seconds=round(duration_sum / passed, 1) if passed else None,
    )
