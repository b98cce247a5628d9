"""Replaying a history: the protocol, and above all that it never looks ahead."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildcoord.prediction.evaluation import evaluate, replay
from buildcoord.prediction.history_file import HistoryRow, read_history

from .history import stamp, synthetic_rows, write_csv

# Real GitHub Actions job durations shipped with the repository (see its README.md).
REAL_FILE = Path(__file__).resolve().parents[2] / "data" / "durations" / "gha_jobs.csv.gz"


def _chronological(rows: list[HistoryRow]) -> list[HistoryRow]:
    return sorted(rows, key=lambda row: row.started_at)


def _predictions(rows: list[HistoryRow]) -> dict[int, tuple[float, float, float, float]]:
    return {
        item.row.line: (
            item.prediction.p50,
            item.prediction.p10,
            item.prediction.p90,
            item.jenkins,
        )
        for item in replay(rows)
    }


def _assert_truncation_changes_nothing_before(rows: list[HistoryRow], cuts: list[int]) -> None:
    ordered = _chronological(rows)
    full = _predictions(ordered)
    for cut in cuts:
        boundary = ordered[cut].started_at
        kept = [row for row in ordered if row.started_at < boundary]
        truncated = _predictions(kept)
        assert truncated
        assert truncated == {line: full[line] for line in truncated}


def test_truncating_the_file_after_row_k_leaves_earlier_predictions_unchanged(
    tmp_path: Path,
) -> None:
    history = read_history(write_csv(tmp_path / "h.csv", synthetic_rows(600)))
    _assert_truncation_changes_nothing_before(history.rows, [100, 250, 400, 500])


def test_truncating_the_real_file_after_row_k_leaves_earlier_predictions_unchanged() -> None:
    rows = _chronological(read_history(REAL_FILE).rows)[:2500]
    _assert_truncation_changes_nothing_before(rows, [900, 2000])


def test_rows_with_the_same_start_time_do_not_see_each_other(tmp_path: Path) -> None:
    earlier = [("p", "job", "main", stamp(minute), "100", "success") for minute in range(3)]
    together = [("p", "job", "main", stamp(10), duration, "success") for duration in ("1000", "10")]
    history = read_history(write_csv(tmp_path / "h.csv", earlier + together))
    scored = replay(history.rows)
    assert [item.row.duration for item in scored] == [1000, 10]
    assert [item.prediction.p50 for item in scored] == pytest.approx([100, 100])
    assert [item.jenkins for item in scored] == [100, 100]


def test_only_successes_with_three_earlier_successes_of_the_job_are_scored(
    tmp_path: Path,
) -> None:
    rows = [
        ("p", "job", "main", stamp(0), "100", "success"),
        ("p", "job", "main", stamp(1), "100", "failure"),
        ("p", "other", "main", stamp(2), "100", "success"),
        ("p", "job", "main", stamp(3), "100", "success"),
        ("p", "job", "main", stamp(4), "100", "success"),
        ("p", "job", "main", stamp(5), "90", "failure"),
        ("p", "job", "main", stamp(6), "110", "success"),
        ("q", "job", "main", stamp(7), "100", "success"),
    ]
    history = read_history(write_csv(tmp_path / "h.csv", rows))
    scored = replay(history.rows)
    assert [(item.row.project, item.row.duration) for item in scored] == [("p", 110)]


def test_rows_out_of_order_in_the_file_are_replayed_in_start_order(tmp_path: Path) -> None:
    rows = [
        ("p", "job", "main", stamp(minute), str(100 + minute), "success") for minute in range(6)
    ]
    forward = replay(read_history(write_csv(tmp_path / "a.csv", rows)).rows)
    backward = replay(read_history(write_csv(tmp_path / "b.csv", rows[::-1])).rows)
    assert [(i.row.duration, i.prediction.p50) for i in forward] == [
        (i.row.duration, i.prediction.p50) for i in backward
    ]


def test_the_evaluation_reports_per_project_figures_for_both_estimators(tmp_path: Path) -> None:
    evaluation = evaluate(read_history(write_csv(tmp_path / "h.csv", synthetic_rows(400))))
    assert set(evaluation.projects) == {"acme/app", "acme/lib"}
    assert sum(c.ours.rows for c in evaluation.projects.values()) == len(evaluation.scored)
    assert evaluation.overall.jenkins.coverage is None
    assert evaluation.overall.ours.coverage is not None


def test_the_replay_reproduces_the_jenkins_baseline_and_beats_it_on_the_real_file() -> None:
    evaluation = evaluate(read_history(REAL_FILE))  # the whole real file: about 5 s
    ours, jenkins = evaluation.overall.ours, evaluation.overall.jenkins
    assert jenkins.rows == 9052
    assert jenkins.mape == pytest.approx(0.108, abs=0.0005)
    assert jenkins.mdape == pytest.approx(0.049, abs=0.0005)
    assert ours.mdape <= 0.043
    assert ours.coverage is not None
    assert 0.78 <= ours.coverage <= 0.85
    assert len(evaluation.projects) == 5
    for comparison in evaluation.projects.values():
        assert comparison.ours.mape < comparison.jenkins.mape
        assert comparison.ours.mdape < comparison.jenkins.mdape
