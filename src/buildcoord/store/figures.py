"""The figures /metrics exports, read in one transaction: the build totals kept as builds are
recorded, and counts over the job, lock, alert and delivery tables (each on an index or a
small table)."""

from __future__ import annotations

from sqlalchemy import Engine

from buildcoord.models import DURATION_BUCKETS, DurationHistogram, StoreFigures
from buildcoord.store import job_queries as queries
from buildcoord.store.engine import driver_read, sql

# Finished builds by branch and result (the totals kept as each build is recorded).
_BUILDS = sql("SELECT branch, result, count FROM build_totals ORDER BY branch, result")

# Each branch's passed builds: count, summed duration, then one cumulative count per bucket.
_DURATIONS = sql(
    "SELECT branch, count, duration_sum, "
    + ", ".join(f"le_{bound:g}" for bound in DURATION_BUCKETS)
    + " FROM build_totals WHERE result = 'succeeded' ORDER BY branch"
)

# Every server's claims, ever (counted by each claim).
_CLAIMS = sql("SELECT name, claims_total FROM servers ORDER BY name")

_LOCKS_HELD = sql("SELECT count(*) FROM lock_holders")

_ALERTS_OPEN = sql(
    "SELECT rule, severity, count(*) FROM alerts WHERE resolved_at IS NULL"
    " GROUP BY rule, severity ORDER BY rule, severity"
)

_GIVEN_UP = sql(
    "SELECT notifier, count(*) FROM alert_deliveries WHERE gave_up_at IS NOT NULL"
    " GROUP BY notifier ORDER BY notifier"
)

_FAILING = sql(
    "SELECT notifier, count(*) FROM alert_deliveries WHERE sent_at IS NULL"
    " AND gave_up_at IS NULL AND last_error IS NOT NULL GROUP BY notifier ORDER BY notifier"
)


class FigureStore:
    """Reads for /metrics."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def read_figures(self) -> StoreFigures:
        """Every figure /metrics reports from the database, in one read transaction."""
        with driver_read(self.engine) as db:
            jobs = {status: int(count) for status, count in db.run(queries.COUNT_BY_STATUS)}
            builds = tuple(
                (branch, result, int(count)) for branch, result, count in db.run(_BUILDS)
            )
            durations = tuple(
                DurationHistogram(
                    branch=row[0],
                    count=int(row[1]),
                    total_seconds=float(row[2] or 0),
                    buckets=tuple(int(value or 0) for value in row[3:]),
                )
                for row in db.run(_DURATIONS).fetchall()
            )
            claims = tuple((name, int(count)) for name, count in db.run(_CLAIMS))
            locks = int(db.run(_LOCKS_HELD).fetchone()[0])
            alerts = tuple(
                (rule, severity, int(count)) for rule, severity, count in db.run(_ALERTS_OPEN)
            )
            given_up = tuple((name, int(count)) for name, count in db.run(_GIVEN_UP))
            failing = tuple((name, int(count)) for name, count in db.run(_FAILING))
        return StoreFigures(
            jobs_by_status=jobs,
            builds=builds,
            durations=durations,
            claims=claims,
            locks_held=locks,
            alerts_open=alerts,
            deliveries_given_up=given_up,
            deliveries_failing=failing,
        )
