"""Scoring queue-wait forecasts on a history that records queue times: the forecast at each
queue time, from what a coordinator knew then, against the actual wait."""

from __future__ import annotations

from pathlib import Path

from buildcoord.prediction.evaluation import evaluate
from buildcoord.prediction.history_file import HistoryRow, read_history
from buildcoord.prediction.wait import forecast_waits, score_waits

from .history import QUEUED_HEADER, queued_rows, write_csv

REAL_FILE = Path(__file__).resolve().parents[2] / "data" / "durations" / "gha_jobs.csv.gz"


def _queued(tmp_path: Path, count: int, servers: int = 2) -> list[HistoryRow]:
    path = write_csv(tmp_path / "queued.csv", queued_rows(count, servers), QUEUED_HEADER)
    history = read_history(path)
    assert not history.malformed
    return history.rows


def test_simulating_the_queue_forecasts_waits_far_better_than_recent_waits_or_none(
    tmp_path: Path,
) -> None:
    accuracy = score_waits(_queued(tmp_path, 1500))

    assert accuracy is not None
    assert accuracy.rows >= 1490
    assert accuracy.mean_wait > 120  # the queue does make builds wait
    # Durations vary ±10 %: a forecast that simulates the queue errs by a fraction of a
    # build; the mean of recent waits by far more, and "no wait" by the whole wait.
    assert accuracy.mae < accuracy.baseline_mae / 4
    assert accuracy.mae < accuracy.zero_mae / 4


def test_a_wait_forecast_uses_nothing_that_happened_after_its_queue_time(
    tmp_path: Path,
) -> None:
    rows = _queued(tmp_path, 600)
    full = {item.row.line: item.forecast for item in forecast_waits(rows)[0]}
    for cut in (100, 350, 599):
        ordered = sorted(rows, key=lambda row: row.queued_at or row.started_at)
        boundary = ordered[cut].queued_at
        assert boundary is not None
        kept = [row for row in rows if (row.queued_at or row.started_at) < boundary]
        truncated = {item.row.line: item.forecast for item in forecast_waits(kept)[0]}
        assert truncated
        assert truncated == {line: full[line] for line in truncated}


def test_one_server_more_than_the_queue_needs_forecasts_no_wait(tmp_path: Path) -> None:
    rows = _queued(tmp_path, 400, servers=8)
    forecasts, _ = forecast_waits(rows)
    idle = [item for item in forecasts if item.actual == 0]
    assert len(idle) > 300
    assert sum(1 for item in idle if item.forecast == 0) >= 0.95 * len(idle)


def test_a_history_without_queue_times_scores_no_wait() -> None:
    evaluation = evaluate(read_history(REAL_FILE))
    assert evaluation.wait is None


def test_a_queue_time_after_the_start_is_a_malformed_row_and_an_unreadable_one_too(
    tmp_path: Path,
) -> None:
    [good, *_] = queued_rows(3)
    late = (*good[:6], "2030-01-01T00:00:00Z", good[7])
    garbled = (*good[:6], "yesterday", good[7])
    path = write_csv(tmp_path / "bad.csv", [good, late, garbled], QUEUED_HEADER)
    history = read_history(path)
    assert len(history.rows) == 1
    assert history.malformed == {
        "queued_at is after started_at": 1,
        "queued_at is not an ISO 8601 time": 1,
    }


def test_absurd_but_well_formed_times_and_durations_are_scored_without_overflow(
    tmp_path: Path,
) -> None:
    rows = list(queued_rows(20))
    rows.append(
        (
            "acme/app",
            "build",
            "main",
            "9999-12-31T23:59:59Z",
            "1e300",
            "success",
            "0001-01-01T00:00:00Z",
            "build1",
        )
    )
    rows.append(
        (
            "acme/app",
            "test",
            "main",
            "2025-01-02T00:00:00Z",
            "1e-300",
            "success",
            "2025-01-01T00:00:00+14:00",
            "build2",
        )
    )
    path = write_csv(tmp_path / "absurd.csv", rows, QUEUED_HEADER)

    evaluation = evaluate(read_history(path))

    assert evaluation.wait is not None
    assert evaluation.wait.rows + evaluation.wait.unforecast == 22
