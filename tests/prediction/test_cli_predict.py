"""buildcoord predict evaluate, through the real CLI entry point."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

from click.testing import CliRunner, Result

from buildcoord.cli import cli

from .history import synthetic_rows, write_csv


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["predict", "evaluate", *args])


def _history(tmp_path: Path) -> Path:
    rows = [*synthetic_rows(300), ("acme/app", "build", "main", "soon", "10", "success")]
    return write_csv(tmp_path / "history.csv", rows)


def test_evaluate_prints_overall_and_per_project_figures_with_the_goal(tmp_path: Path) -> None:
    result = _run(str(_history(tmp_path)))
    assert result.exit_code == 0, result.output
    assert "1 malformed" in result.stdout
    assert "started_at is not an ISO 8601 time" in result.stdout
    for text in ("all projects", "acme/app", "acme/lib", "Jenkins MAPE", "coverage", "Goal"):
        assert text in result.stdout
    assert "PASS" in result.stdout or "MISS" in result.stdout


def test_evaluate_json_is_one_object_with_both_estimators(tmp_path: Path) -> None:
    result = _run(str(_history(tmp_path)), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["malformed"]["count"] == 1
    assert set(report["projects"]) == {"acme/app", "acme/lib"}
    assert report["overall"]["ours"]["rows"] == report["scored"] > 0
    assert report["overall"]["jenkins"]["coverage"] is None
    assert isinstance(report["passed"], bool)


def test_evaluate_rows_writes_one_line_per_scored_row(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    result = _run(str(_history(tmp_path)), "--rows", str(out), "--json")
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == json.loads(result.stdout)["scored"]
    first = lines[0]
    assert float(first["p10"]) <= float(first["p50"]) <= float(first["p90"])
    assert {"line", "project", "job", "actual", "jenkins", "level"} <= set(first)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_evaluate_of_a_missing_file_is_one_error_line(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "absent.csv"))
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: cannot read")


def test_evaluate_of_a_file_without_the_columns_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("name,size\nx,1\n")
    result = _run(str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "missing column" in result.stderr


def test_evaluate_rows_file_gets_the_usual_permissions_not_a_temporary_files(
    tmp_path: Path,
) -> None:
    out = tmp_path / "rows.csv"
    result = _run(str(_history(tmp_path)), "--rows", str(out))
    assert result.exit_code == 0, result.output
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_evaluate_of_a_history_too_short_to_score_says_so_instead_of_nan(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "short.csv", synthetic_rows(2))
    result = _run(str(path))
    assert result.exit_code == 0, result.output
    assert "no row could be scored" in result.stdout
    assert "nan" not in result.stdout
    report = json.loads(_run(str(path), "--json").stdout)
    assert report["scored"] == 0
    assert "nan" not in json.dumps(report["goals"]).lower()
