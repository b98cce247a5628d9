"""Reading history files: bad files are one clear error, bad rows are counted."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from buildcoord.errors import InvalidInput
from buildcoord.prediction.history_file import read_history

from .history import HEADER, stamp, write_csv


def test_malformed_rows_are_counted_by_reason_and_left_out(tmp_path: Path) -> None:
    rows = [
        ("p", "job", "main", stamp(0), "100", "success"),
        ("p", "job", "main", "yesterday", "100", "success"),
        ("p", "job", "main", stamp(1), "fast", "success"),
        ("p", "job", "main", stamp(2), "-5", "failure"),
        ("p", "", "main", stamp(3), "100", "success"),
        ("p", "job", "main", stamp(4)),
        ("p", "job", "main", stamp(5), "0", "success"),
        ("p", "job", "main", stamp(6), "0", "cancelled"),
        ("p", "job", "main", stamp(7), "40", "skipped"),
    ]
    history = read_history(write_csv(tmp_path / "h.csv", rows))
    assert [row.line for row in history.rows] == [2, 9]
    assert history.skipped == 1
    assert history.malformed_count == 6
    assert history.malformed_lines == [3, 4, 5, 6, 7, 8]
    assert history.malformed["started_at is not an ISO 8601 time"] == 1
    assert history.malformed["4 fields instead of 6"] == 1


def test_a_gzipped_file_reads_like_the_plain_one(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "h.csv", [("p", "job", "main", stamp(0), "100", "success")])
    packed = tmp_path / "h.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_history(packed).rows == read_history(plain).rows


def test_extra_columns_in_any_order_are_ignored(tmp_path: Path) -> None:
    header = ("run_id", *reversed(HEADER))
    path = write_csv(
        tmp_path / "h.csv", [("7", "success", "12", stamp(0), "main", "j", "p")], header
    )
    (read,) = read_history(path).rows
    assert (read.project, read.job, read.duration) == ("p", "j", 12)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        read_history(tmp_path / "absent.csv")


def test_a_binary_file_is_not_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(InvalidInput, match="not a CSV file"):
        read_history(path)


def test_a_csv_without_the_needed_columns_names_them(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", [("a", "b")], ("repo", "other"))
    with pytest.raises(InvalidInput, match=r"missing column.*job_name, branch"):
        read_history(path)


def test_an_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("")
    with pytest.raises(InvalidInput, match="empty file"):
        read_history(path)


def test_the_optional_event_column_becomes_the_builds_trigger(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(
        "repo,job_name,branch,started_at,duration_s,result,event\n"
        "p,job,main,2025-01-01T00:00:00Z,10,success,push\n"
        "p,job,main,2025-01-01T00:01:00Z,10,success,\n"
    )
    history = read_history(path)
    assert [row.as_build().trigger for row in history.rows] == ["push", None]
