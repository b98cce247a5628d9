"""Score queue-wait forecasts on a history whose rows say when each build was queued.

When a job is queued, the coordinator forecasts its start (``services/forecast.py``): each
running build has ``expected_remaining`` seconds left, the builds queued before it take the
first free server in turn for their p50, and the job starts on the next one free. This replays
that forecast from the file alone, at each row's ``queued_at``, knowing only what a live
coordinator would have known then:

* the builds running then (started, not yet finished) and for how long they had run;
* the builds waiting then (queued before it, not started), first queued first;
* the durations of builds that had **finished** by then (the predictor is fed each build at
  its finish, as a coordinator records it);
* how many builds can run at once: the servers that ran a build in the week before (the
  file's ``server`` column), or without one the most builds seen running at once in that
  week — never fewer than are running.

The forecast wait is scored against the actual one (``started_at - queued_at``) by mean and
median absolute error in seconds, against two baselines measured on the same rows: the mean
wait of the last three builds that had started (Jenkins' estimate, applied to waits), and
no wait at all. A row gets no forecast (counted apart) when a build running or waiting ahead
of it has nothing to predict from, or no build has run yet.
"""

from __future__ import annotations

import heapq
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from buildcoord.prediction.history_file import HistoryRow
from buildcoord.prediction.predictor import Predictor, PredictorSettings, expected_remaining

WEEK_SECONDS = 7 * 24 * 3600.0
BASELINE_WAITS = 3

# Event kinds, in the order they are taken at the same instant: a build that finishes frees
# its server before one starts on it, and a build queued then sees both.
_FINISH, _START, _QUEUE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class WaitForecast:
    """One row's wait as forecast when it was queued, and as it was (seconds)."""

    row: HistoryRow
    forecast: float
    baseline: float
    actual: float


@dataclass(frozen=True, slots=True)
class WaitAccuracy:
    """Forecast waits against actual ones (seconds)."""

    rows: int
    """Rows with a queue time whose wait was forecast and scored."""
    unforecast: int
    """Rows with a queue time that got no forecast (nothing to predict a build ahead from)."""
    mean_wait: float
    mae: float
    mdae: float
    baseline_mae: float
    """The mean of the last three known waits, as the forecast."""
    baseline_mdae: float
    zero_mae: float
    """No wait at all, as the forecast: the mean actual wait."""


def score_waits(
    rows: Sequence[HistoryRow], settings: PredictorSettings | None = None
) -> WaitAccuracy | None:
    """Replay ``rows`` and score a wait forecast at each queue time; None when no row has one."""
    if not any(row.queued_at is not None for row in rows):
        return None
    forecasts, unforecast = forecast_waits(rows, settings)
    if not forecasts:
        nan = float("nan")
        return WaitAccuracy(0, unforecast, nan, nan, nan, nan, nan, nan)
    actual = [item.actual for item in forecasts]
    ours_errors = [abs(item.forecast - item.actual) for item in forecasts]
    baseline_errors = [abs(item.baseline - item.actual) for item in forecasts]
    return WaitAccuracy(
        rows=len(forecasts),
        unforecast=unforecast,
        mean_wait=statistics.fmean(actual),
        mae=statistics.fmean(ours_errors),
        mdae=statistics.median(ours_errors),
        baseline_mae=statistics.fmean(baseline_errors),
        baseline_mdae=statistics.median(baseline_errors),
        zero_mae=statistics.fmean(actual),
    )


def forecast_waits(
    rows: Sequence[HistoryRow], settings: PredictorSettings | None = None
) -> tuple[list[WaitForecast], int]:
    """Each row with a queue time: its wait as forecast when it was queued; and how many such
    rows got none."""
    # Times as float seconds: a duration the file allows (any finite one) cannot overflow them.
    events: list[tuple[float, int, int]] = []
    for index, row in enumerate(rows):
        if row.queued_at is not None:
            events.append((row.queued_at.timestamp(), _QUEUE, index))
        started = row.started_at.timestamp()
        events.append((started, _START, index))
        events.append((started + row.duration, _FINISH, index))
    events.sort()
    predictor = Predictor(settings)
    running: dict[int, HistoryRow] = {}
    waiting: dict[int, HistoryRow] = {}
    servers_seen: deque[tuple[float, str]] = deque()
    peaks: deque[tuple[float, int]] = deque()
    known_waits: deque[float] = deque(maxlen=BASELINE_WAITS)
    found: list[WaitForecast] = []
    unforecast = 0
    for now, kind, index in events:
        row = rows[index]
        if kind == _FINISH:
            running.pop(index, None)
            predictor.observe(row.as_build())
        elif kind == _START:
            waiting.pop(index, None)
            running[index] = row
            if row.server is not None:
                servers_seen.append((now, row.server))
            peaks.append((now, len(running)))
            if row.queued_at is not None:
                known_waits.append((row.started_at - row.queued_at).total_seconds())
        else:
            while servers_seen and servers_seen[0][0] < now - WEEK_SECONDS:
                servers_seen.popleft()
            while peaks and peaks[0][0] < now - WEEK_SECONDS:
                peaks.popleft()
            capacity = _capacity(servers_seen, peaks, len(running))
            ahead = running
            if index in running:  # it started the instant it was queued: not ahead of itself
                ahead = {other: build for other, build in running.items() if other != index}
            forecast = _forecast(predictor, now, capacity, ahead, waiting)
            if row.started_at.timestamp() > now:  # one that started at once is running already
                waiting[index] = row
            if forecast is None or not known_waits:
                unforecast += 1
                continue
            assert row.queued_at is not None
            waited = (row.started_at - row.queued_at).total_seconds()
            found.append(WaitForecast(row, forecast, statistics.fmean(known_waits), waited))
    return found, unforecast


def _capacity(
    servers_seen: deque[tuple[float, str]], peaks: deque[tuple[float, int]], running: int
) -> int:
    """How many builds can run at once: servers seen in the week, else the week's peak."""
    if servers_seen:
        return max(len({server for _, server in servers_seen}), running)
    return max(max((count for _, count in peaks), default=0), running)


def _forecast(
    predictor: Predictor,
    now: float,
    capacity: int,
    running: dict[int, HistoryRow],
    waiting: dict[int, HistoryRow],
) -> float | None:
    """Seconds until a build queued now starts, or None when something ahead of it has no
    prediction (or nothing can run)."""
    if capacity <= 0:
        return None
    free: list[float] = []
    for row in running.values():
        prediction = predictor.predict(row.key, row.branch, row.server, row.trigger)
        if prediction is None:
            return None
        free.append(expected_remaining(prediction, now - row.started_at.timestamp()))
    free += [0.0] * (capacity - len(free))
    heapq.heapify(free)
    for row in waiting.values():  # first queued first
        prediction = predictor.predict(row.key, row.branch, None, row.trigger)
        if prediction is None:
            return None
        heapq.heappush(free, heapq.heappop(free) + prediction.p50)
    return free[0]
