"""Build history and live predictions: durations, the best server, queue forecasts, stats.

Every finished attempt that had started is recorded (the queue's ``finished`` hook). One
``Predictor`` per coordinator is fed the history once, in the order builds finished (what a
live coordinator knew when), and then each new record as it is made: a request never replays
history. Builds finished through another coordinator (or another ``serve`` worker) on the
same database are caught up with at most every ``SYNC_SECONDS``, by finish time, each build
fed once. The predictor is not thread-safe, so every use holds one lock; a request's
predictions are computed under it in one pass (``_Predictions``), memoised per
(build key, branch, server, trigger). ``serve`` feeds the model at start (``warm_up``).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from buildcoord import validation
from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput, NotFound
from buildcoord.models import (
    MAX_DURATION_SECONDS,
    BuildRecord,
    DurationEstimate,
    HistoryStats,
    Job,
    JobForecast,
    Principal,
    Recommendation,
    StatsRow,
)
from buildcoord.prediction.predictor import FinishedBuild, Prediction, Predictor
from buildcoord.services.authority import require_reader
from buildcoord.services.forecast import (
    Predict,
    QueuePlan,
    plan_queue,
    rank_servers,
    running_forecast,
)
from buildcoord.services.servers import ServerService
from buildcoord.store import Store
from buildcoord.store.history import build_key

log = logging.getLogger("buildcoord.prediction")

LOAD_WINDOW = 50_000
"""Most recent finished builds the predictor is fed at start (it keeps 60 per build key)."""
STATS_WINDOW = 100_000
"""Most recent finished builds the statistics are computed over."""
QUEUE_WINDOW = 1_000
"""Queued jobs (in claim order) a forecast simulates; later ones get no forecast."""
RUNNING_WINDOW = 1_000
SYNC_SECONDS = 2.0
"""How often a request first reads the builds other coordinators recorded meanwhile."""
SYNC_MARGIN = 120.0
"""Seconds of finish times read again at each catch-up: a build committed late by another
process still gets in; ones already fed are recognised by (job, attempt)."""

RECORD_MARGIN = 30.0
"""Builds that finished this recently are left to their own after-finish recording."""
RECORD_LOOKBACK = 3600.0
"""How far back (before the margin) a look for missing history rows reaches."""
RECORD_BATCH = 1000
"""Most missing rows recorded by one look (the next looks take the rest)."""

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _finished(record: BuildRecord) -> FinishedBuild:
    return FinishedBuild(
        key=record.build_key,
        branch=record.branch,
        server=record.server,
        started_at=record.started_at,
        duration=record.duration,
        result=record.result,
        trigger=record.trigger,
    )


class PredictionService:
    """Records finished builds and answers prediction questions from them."""

    def __init__(
        self, store: Store, clock: Clock, settings: Settings, servers: ServerService
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.servers = servers
        self._lock = threading.Lock()  # guards the predictor and the loading state
        self._load_lock = threading.Lock()  # one load at a time
        self._predictor: Predictor | None = None
        self._loading = False
        self._pending: list[BuildRecord] = []
        self._seen: dict[tuple[int, int], float] = {}  # fed builds within the sync margin
        self._high_water = 0.0  # the latest finish time fed
        self._synced_at = float("-inf")  # monotonic time of the last catch-up

    # -- recording ------------------------------------------------------------------------

    def job_finished(self, job: Job, _artifact_root: str | None = None) -> None:
        """The queue's after-finish hook: record the attempt if it ran."""
        self.record(job)

    def record(self, job: Job) -> BuildRecord | None:
        """Record a finished attempt that had started (one row per attempt); feed the model."""
        record = self.store.record_build(job)
        if record is not None:
            with self._lock:
                if self._predictor is not None:
                    self._feed(self._predictor, record)
                elif self._loading:  # the load's snapshot may have missed it
                    self._pending.append(record)
        return record

    def record_missing(self) -> int:
        """Record the finished attempts whose after-finish recording was lost (a connection
        that dropped between the completion's commit and the history's): those that finished
        in the hour before the last ``RECORD_MARGIN`` seconds. Returns how many; maintenance
        calls it once a minute."""
        now = self.clock.now().timestamp()
        until = now - RECORD_MARGIN
        missing = self.store.unrecorded_finished(until - RECORD_LOOKBACK, until, RECORD_BATCH)
        recorded = sum(1 for job in missing if self.record(job) is not None)
        if recorded:
            log.warning(
                "recorded %d finished builds whose history was missing (job ids %s)",
                recorded,
                ", ".join(str(job.id) for job in missing[:10]),
            )
        return recorded

    def _feed(self, predictor: Predictor, record: BuildRecord) -> None:
        """Observe a build once (call with ``_lock`` held)."""
        key = (record.job_id, record.attempt)
        if key in self._seen:
            return
        finished = record.finished_at.timestamp()
        self._seen[key] = finished
        self._high_water = max(self._high_water, finished)
        predictor.observe(_finished(record))

    def _catch_up(self, predictor: Predictor) -> None:
        """Feed the builds other processes recorded since the last look (at most every 2 s)."""
        now = self.clock.monotonic()
        if now - self._synced_at < SYNC_SECONDS:
            return
        self._synced_at = now
        records = self.store.builds_finished_since(self._high_water - SYNC_MARGIN)
        with self._lock:
            for record in records:
                self._feed(predictor, record)
            horizon = self._high_water - SYNC_MARGIN
            self._seen = {key: at for key, at in self._seen.items() if at >= horizon}

    # -- the model ------------------------------------------------------------------------

    def relearn(self) -> None:
        """Drop the model: the next question feeds it the history afresh (after builds were
        added out of their time, as an import of a seed's jobs adds them)."""
        with self._load_lock, self._lock:
            self._predictor = None
            self._seen = {}
            self._high_water = 0.0

    @property
    def ready(self) -> bool:
        """Whether the model has been fed its history (a question will not wait for it)."""
        return self._predictor is not None

    def warm_up(self) -> None:
        """Feed the model its history now (``serve`` calls this in a thread at start), so that
        the first question after a start does not wait for it; a failure is logged and the
        first question tries again."""
        started = time.perf_counter()
        try:
            self._model()
        except Exception:
            log.exception("loading the prediction model failed; the first question retries")
            return
        log.info(
            "prediction model fed %d builds in %.1f s",
            len(self._seen),
            time.perf_counter() - started,
        )

    def _model(self) -> Predictor:
        """The predictor, fed the recent history once (call with ``_lock`` not held)."""
        if self._predictor is not None:
            self._catch_up(self._predictor)
            return self._predictor
        with self._load_lock:
            if self._predictor is not None:
                return self._predictor
            with self._lock:
                self._loading, self._pending = True, []
            try:
                records = self.store.recent_builds(LOAD_WINDOW)
                predictor = Predictor()
                predictor.observe_all(_finished(record) for record in records)
                with self._lock:
                    for record in records:
                        finished = record.finished_at.timestamp()
                        self._seen[(record.job_id, record.attempt)] = finished
                        self._high_water = max(self._high_water, finished)
                    for record in self._pending:
                        self._feed(predictor, record)
                    self._predictor = predictor
                    self._synced_at = self.clock.monotonic()
            finally:
                with self._lock:
                    self._loading, self._pending = False, []
            return predictor

    @contextmanager
    def _predictions(self) -> Iterator[Predict]:
        """Predict under the lock, memoised for the duration of one request."""
        predictor = self._model()
        with self._lock:
            yield _Memo(predictor)

    def _key_of(self, branch: str) -> str:
        """The build key a new build of branch would have; NotFound for an unknown branch."""
        validation.branch_name(branch)
        setup = self.store.find_branch(branch)
        if setup is not None:
            return build_key(branch, setup.command)
        key = self.store.latest_build_key(branch)
        if key is None:
            raise NotFound(
                f"unknown branch {branch}: it is not set up and no build of it has finished"
            )
        return key

    # -- questions ------------------------------------------------------------------------

    def duration(
        self,
        branch: str,
        server: str | None = None,
        *,
        trigger: str | None = None,
        by: Principal,
    ) -> DurationEstimate:
        """p50 and the p10-p90 band for the next build of branch (on server, started by
        trigger: past builds started the same way weigh more)."""
        require_reader(by, "reading predictions")
        if trigger is not None:
            validation.trigger(trigger)
        key = self._key_of(branch)
        if server is not None:
            self.store.get_server(server)  # NotFound for an unknown server
        with self._predictions() as predict:
            prediction = predict(key, branch, server, trigger)
        if prediction is None:
            raise NotFound("no prediction available: no build has succeeded yet")
        return _estimate(branch, server, key, prediction, trigger)

    def p90_seconds(self, jobs: Sequence[Job]) -> dict[int, float]:
        """Each job's predicted p90 duration (its branch's build, on its server), where the
        history gives one: what the monitor's job_stuck measures a running job against."""
        if not jobs:
            return {}
        found: dict[int, float] = {}
        with self._predictions() as predict:
            for job in jobs:
                try:
                    key = self._key_of(job.branch)
                except NotFound:
                    continue
                prediction = predict(key, job.branch, job.server, job.trigger)
                if prediction is not None:
                    found[job.id] = prediction.p90
        return found

    def forecast(self) -> dict[int, JobForecast]:
        """Predicted start and finish of queued jobs, remaining time of running ones."""
        with self._planned() as plan:
            return plan.forecasts

    def running_forecasts(self, jobs: Sequence[Job]) -> dict[int, JobForecast]:
        """The forecasts of running jobs alone (their time left), as ``forecast`` gives them,
        without simulating the queue (the dashboard's running builds)."""
        if not jobs:
            return {}
        now = self.clock.now()
        setups = {setup.name: setup for setup in self.store.list_branches()}
        with self._predictions() as predict:
            return {
                job.id: running_forecast(job, now, setups, predict)[0]
                for job in jobs
                if job.status == "running"
            }

    def forecast_new(self, job: Job) -> JobForecast:
        """The forecast of a job just queued: the running jobs and the queued ones ahead of it
        in claim order simulated, then it. Never raises (the job is queued already, and a
        caller told of an error might queue it again): what goes wrong becomes the note."""
        if job.status != "queued":
            reason = f": {job.blocked_reason}" if job.blocked_reason else ""
            return _no_forecast(job, f"it is {job.status}{reason}")
        if self._predictor is None and self._loading:
            return _no_forecast(job, "the predictor is still learning the history")
        try:
            with self._planned(until=job.id) as plan:
                found = plan.forecasts.get(job.id)
        except Exception as exc:
            log.warning("no forecast for new job %s: %s", job.id, exc, exc_info=True)
            return _no_forecast(job, f"the forecast failed: {type(exc).__name__}")
        if found is None:
            return _no_forecast(job, f"more than {QUEUE_WINDOW:,} queued jobs are ahead of it")
        return found

    def forecast_jobs(self, *, by: Principal) -> list[JobForecast]:
        """Every forecast: running jobs first, then queued ones in claim order."""
        require_reader(by, "reading predictions")
        return list(self.forecast().values())

    @contextmanager
    def _planned(self, until: int | None = None) -> Iterator[QueuePlan]:
        """The queue simulated now (with ``until``: only as far as that queued job, in claim
        order); its ``predict`` may be used inside the block only."""
        now = self.clock.now()
        servers = self.servers.list_servers(by=_SYSTEM_READER)
        running = self.store.list_jobs(statuses=["running"], limit=RUNNING_WINDOW)
        queued = self.store.list_jobs(statuses=["queued"], limit=QUEUE_WINDOW)
        if until is not None:
            ids = [job.id for job in queued]
            queued = queued[: ids.index(until) + 1] if until in ids else []
        setups = {setup.name: setup for setup in self.store.list_branches()}
        with self._predictions() as predict:
            yield plan_queue(
                now=now,
                servers=servers,
                running=sorted(running, key=lambda job: job.id),
                queued=queued,
                branches=setups,
                predict=predict,
            )

    def recommend(
        self, branch: str, *, trigger: str | None = None, by: Principal
    ) -> Recommendation:
        """The server where a build of branch (started by trigger) queued now would finish
        first, and why."""
        require_reader(by, "reading predictions")
        if trigger is not None:
            validation.trigger(trigger)
        key = self._key_of(branch)
        setup = self.store.find_branch(branch)
        labels = setup.labels if setup is not None else ()
        with self._planned() as plan:
            choices = rank_servers(
                plan,
                key=key,
                branch=branch,
                labels=labels,
                min_disk_free_bytes=int(self.settings.recommend_min_disk_free_gb * 1024**3),
                describe=_estimate,
                trigger=trigger,
            )
        best = next((choice.server for choice in choices if choice.eligible), None)
        return Recommendation(branch=branch, server=best, choices=tuple(choices))

    def history(self, limit: int, *, by: Principal) -> list[BuildRecord]:
        """The ``limit`` most recently finished attempts, oldest first (``predict export``)."""
        require_reader(by, "reading build history")
        if not 1 <= limit <= STATS_WINDOW:
            raise InvalidInput(f"limit must be 1 to {STATS_WINDOW:,}, not {limit}")
        return self.store.recent_builds(limit)

    def stats(self, *, by: Principal) -> HistoryStats:
        """Statistics over recent history: by branch, server, hour and weekday (UTC)."""
        require_reader(by, "reading statistics")
        records = self.store.recent_builds(STATS_WINDOW)
        return HistoryStats(
            builds=sum(1 for record in records if record.result != "lost"),
            by_branch=_table(records, lambda record: record.branch),
            by_server=_table(records, lambda record: record.server or "-"),
            by_hour=_table(records, lambda record: f"{record.hour_of_day:02d}"),
            by_day_of_week=_table(records, lambda record: DAY_NAMES[record.day_of_week]),
        )


_SYSTEM_READER = Principal("system", "prediction")


def _no_forecast(job: Job, note: str) -> JobForecast:
    return JobForecast(
        job_id=job.id,
        server=None,
        predicted_start=None,
        predicted_finish=None,
        expected_remaining_seconds=None,
        note=note,
    )


def _estimate(
    branch: str, server: str | None, key: str, prediction: Prediction, trigger: str | None
) -> DurationEstimate:
    return DurationEstimate(
        branch=branch,
        server=server,
        build_key=key,
        p50=round(prediction.p50, 3),
        p10=round(prediction.p10, 3),
        p90=round(prediction.p90, 3),
        history=prediction.history,
        level=prediction.level,
        trigger=trigger,
    )


def _table(
    records: list[BuildRecord], group_of: Callable[[BuildRecord], str]
) -> tuple[StatsRow, ...]:
    """One row per group: count, successes, success rate, mean and median successful duration,
    and lost attempts (not builds: counted apart)."""
    groups: dict[str, list[BuildRecord]] = {}
    lost: dict[str, int] = {}
    for record in records:
        group = group_of(record)
        if record.result == "lost":
            lost[group] = lost.get(group, 0) + 1
            groups.setdefault(group, [])
        else:
            groups.setdefault(group, []).append(record)
    rows = []
    for group, members in groups.items():
        successes = [member for member in members if member.result == "succeeded"]
        # A duration no build can have (stored before durations were bounded) would make
        # the mean infinite or NaN; it stays out of the figures.
        durations = [
            success.duration
            for success in successes
            if 0 <= success.duration <= MAX_DURATION_SECONDS
        ]
        rows.append(
            StatsRow(
                group=group,
                count=len(members),
                succeeded=len(successes),
                success_rate=round(len(successes) / len(members), 4) if members else 0.0,
                mean_duration=round(statistics.fmean(durations), 3) if durations else None,
                median_duration=round(statistics.median(durations), 3) if durations else None,
                lost=lost.get(group, 0),
            )
        )
    # Weekdays in calendar order; branches, servers and (zero-padded) hours by name.
    order = {name: index for index, name in enumerate(DAY_NAMES)}
    return tuple(sorted(rows, key=lambda row: (order.get(row.group, -1), row.group)))


class _Memo:
    """The predictor's answers for one request, each asked once: a server its history does
    not name is asked as no server, so that a look at a thousand servers costs one answer."""

    def __init__(self, predictor: Predictor) -> None:
        self._predictor = predictor
        self._memo: dict[tuple[str, str, str | None, str | None], Prediction | None] = {}

    def servers_with_history(self, key: str, branch: str) -> frozenset[str]:
        return self._predictor.servers_with_history(key, branch)

    def __call__(
        self, key: str, branch: str, server: str | None, trigger: str | None
    ) -> Prediction | None:
        if server is not None and server not in self._predictor.servers_with_history(key, branch):
            server = None
        asked = (key, branch, server, trigger)
        if asked not in self._memo:
            self._memo[asked] = self._predictor.predict(key, branch, server, trigger)
        return self._memo[asked]
