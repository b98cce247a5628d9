"""buildcoord predict duration|recommend|stats|evaluate.

``duration``, ``recommend`` and ``stats`` ask the coordinator, which keeps the build history;
``evaluate`` needs no coordinator: it replays a local file (docs/prediction.md).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from buildcoord.cli.context import get_context, json_option
from buildcoord.cli.output import emit_json, table
from buildcoord.errors import InvalidInput
from buildcoord.models import StatsRow
from buildcoord.prediction.evaluation import (
    MIN_EARLIER_SUCCESSES,
    Accuracy,
    Comparison,
    Evaluation,
    ScoredRow,
    evaluate,
)
from buildcoord.prediction.history_file import read_history
from buildcoord.prediction.wait import WaitAccuracy

ROW_COLUMNS = (
    "line",
    "project",
    "job",
    "branch",
    "started_at",
    "actual",
    "p50",
    "p10",
    "p90",
    "level",
    "history",
    "jenkins",
)


@click.group("predict")
def predict() -> None:
    """Build-duration prediction: durations, the best server, statistics, evaluation."""


@predict.command("duration")
@click.argument("branch")
@click.option("--server", help="Predict for this server (default: any).")
@click.option(
    "--trigger",
    help="Predict a build started this way (push, schedule, manual, ...): past builds "
    "started the same way weigh more (default: all alike).",
)
@json_option
def duration_command(branch: str, server: str | None, trigger: str | None, as_json: bool) -> None:
    """Predict how long the next build of BRANCH takes: p50 and the p10-p90 band, seconds."""
    with get_context().client() as client:
        estimate = client.predict_duration(branch, server, trigger=trigger)
    if as_json:
        emit_json(estimate)
        return
    where = f" on {estimate.server}" if estimate.server else ""
    if estimate.trigger:
        where += f" ({estimate.trigger})"
    click.echo(
        f"{estimate.branch}{where}: p50 {estimate.p50:.0f}s "
        f"(p10-p90 {estimate.p10:.0f}-{estimate.p90:.0f}s)"
    )
    click.echo(f"history: {estimate.history} successful builds; level: {estimate.level}")


@predict.command("recommend")
@click.argument("branch")
@click.option(
    "--trigger",
    help="For a build started this way (push, schedule, manual, ...) (default: all alike).",
)
@json_option
def recommend_command(branch: str, trigger: str | None, as_json: bool) -> None:
    """Name the server where a build of BRANCH queued now would finish first, and why."""
    with get_context().client() as client:
        recommendation = client.recommend_server(branch, trigger=trigger)
    if as_json:
        emit_json(recommendation)
        return
    rows = []
    for choice in recommendation.choices:
        finish = "-" if choice.finish_seconds is None else f"{choice.finish_seconds:.0f}s"
        verdict = "skipped" if not choice.eligible else finish
        rows.append((choice.server, choice.status, verdict, choice.reason))
    if recommendation.server is None:
        click.echo(f"No server can take a build of {branch} now")
    else:
        click.echo(f"Recommended: {recommendation.server}")
    if rows:
        table(("server", "status", "finish in", "why"), rows)


@predict.command("stats")
@json_option
def stats_command(as_json: bool) -> None:
    """Finished builds by branch, server, hour of day and weekday (UTC)."""
    with get_context().client() as client:
        stats = client.history_stats()
    if as_json:
        emit_json(stats)
        return
    click.echo(f"{stats.builds} finished builds (durations: successful builds only)")
    sections = (
        ("By Branch", "branch", stats.by_branch),
        ("By Server", "server", stats.by_server),
        ("By Hour (UTC)", "hour", stats.by_hour),
        ("By Day of Week (UTC)", "day", stats.by_day_of_week),
    )
    for title, name, rows in sections:
        click.echo()
        click.echo(f"{title}:")
        table(
            (name, "builds", "success", "mean", "median", "lost"),
            [_stats_row(row) for row in rows],
        )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def _stats_row(row: StatsRow) -> tuple[str, ...]:
    return (
        row.group,
        str(row.count),
        f"{row.success_rate * 100:.0f} %",
        _seconds(row.mean_duration),
        _seconds(row.median_duration),
        str(row.lost),
    )


EXPORT_COLUMNS = (
    "repo",
    "job_name",
    "branch",
    "started_at",
    "duration_s",
    "result",
    "event",
    "queued_at",
    "server",
    "finished_at",
    "commit_sha",
    "job_id",
    "attempt",
)


@predict.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=10_000,
    show_default=True,
    help="The most recently finished attempts to export (at most 100,000).",
)
def export_command(file: Path, limit: int) -> None:
    """Write the coordinator's build history to FILE as a history CSV for ``predict evaluate``.

    One row per attempt that ran, oldest first: repo is the branch and job_name its build key
    (branch and command), so evaluate reports per branch; with queue times and servers, so
    it scores the queue-wait forecast too.
    """
    with get_context().client() as client:
        records = client.build_history(limit)
    _write_csv(
        file,
        EXPORT_COLUMNS,
        (
            (
                record.branch,
                record.build_key[:16],
                record.branch,
                _iso(record.started_at),
                f"{record.duration:.3f}",
                record.result,
                record.trigger or "",
                _iso(record.queued_at),
                record.server or "",
                _iso(record.finished_at),
                record.commit,
                record.job_id,
                record.attempt,
            )
            for record in records
        ),
    )
    click.echo(f"Exported {len(records):,} builds to {file}")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@predict.command("evaluate")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--rows",
    "rows_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one CSV line per scored row (key, actual, p50, p10, p90, Jenkins) here.",
)
@json_option
def evaluate_command(file: Path, rows_path: Path | None, as_json: bool) -> None:
    """Replay FILE.csv[.gz] in start order and score our predictor against Jenkins' estimator.

    Each prediction uses only rows that started before it; every successful row whose job
    has at least three earlier successes is scored.
    """
    history = read_history(file)
    progress = _progress if sys.stderr.isatty() else None
    evaluation = evaluate(history, progress=progress)
    if progress is not None:
        click.echo("\r\033[K", nl=False, err=True)
    if rows_path is not None:
        _write_rows(rows_path, evaluation.scored)
    if as_json:
        click.echo(json.dumps(_as_dict(evaluation), indent=2))
    else:
        _print_report(evaluation)


def _progress(done: int, total: int) -> None:
    click.echo(f"\rreplaying: {done:,} / {total:,} rows", nl=False, err=True)


def _write_rows(path: Path, scored: list[ScoredRow]) -> None:
    """One CSV line per scored row, written atomically."""
    _write_csv(
        path,
        ROW_COLUMNS,
        (
            (
                item.row.line,
                item.row.project,
                item.row.job,
                item.row.branch,
                item.row.started_at.isoformat().replace("+00:00", "Z"),
                f"{item.row.duration:g}",
                f"{item.prediction.p50:.1f}",
                f"{item.prediction.p10:.1f}",
                f"{item.prediction.p90:.1f}",
                item.prediction.level,
                item.prediction.history,
                f"{item.jenkins:.1f}",
            )
            for item in scored
        ),
    )


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a CSV to a temporary file beside ``path``, then rename it into place."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o666 & ~_umask())  # as open() makes it, not mkstemp's 0600
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:.{digits}f} %"


def _print_report(evaluation: Evaluation) -> None:
    history = evaluation.history
    click.echo(
        f"{history.path}: {len(history.rows):,} rows replayed, {history.skipped:,} skipped ones "
        f"dropped, {history.malformed_count:,} malformed, {len(evaluation.scored):,} scored"
    )
    for reason, count in sorted(history.malformed.items()):
        click.echo(f"  malformed: {count:,} x {reason}")
    if history.malformed_lines:
        lines = ", ".join(str(line) for line in history.malformed_lines)
        more = ", ..." if history.malformed_count > len(history.malformed_lines) else ""
        click.echo(f"  malformed lines: {lines}{more}")
    if not evaluation.scored:
        click.echo(
            f"no row could be scored: a row is scored when its job has at least "
            f"{MIN_EARLIER_SUCCESSES} earlier successful rows"
        )
        return
    click.echo()
    rows: list[tuple[str, ...]] = [_table_row("all projects", evaluation.overall)]
    rows += [_table_row(name, comparison) for name, comparison in evaluation.projects.items()]
    table(
        (
            "project",
            "rows",
            "MAPE",
            "Jenkins MAPE",
            "MdAPE",
            "Jenkins MdAPE",
            "p10-p90 coverage",
            "band width (p90-p10)/p50",
        ),
        rows,
    )
    if evaluation.wait is not None:
        _print_wait(evaluation.wait)
    click.echo()
    click.echo("Goals (for any history: ours against Jenkins' estimator on the same rows):")
    table(
        ("", "target", "measured", ""),
        [
            (goal.name, goal.target, goal.measured, "PASS" if goal.passed else "MISS")
            for goal in evaluation.goals
        ],
    )


def _print_wait(wait: WaitAccuracy) -> None:
    """The queue-wait section: our forecast against the two baselines."""
    click.echo()
    click.echo(
        f"Queue wait (forecast when each build was queued; {wait.rows:,} rows scored,"
        f" {wait.unforecast:,} without a forecast):"
    )
    if not wait.rows:
        click.echo("  no row could be scored: no build ahead of any queued one had a prediction")
        return
    table(
        ("forecast", "mean abs error", "median abs error"),
        [
            ("ours (the queue simulated)", _seconds(wait.mae), _seconds(wait.mdae)),
            (
                "mean of the last 3 waits",
                _seconds(wait.baseline_mae),
                _seconds(wait.baseline_mdae),
            ),
            ("no wait", _seconds(wait.zero_mae), "-"),
        ],
    )
    click.echo(f"  mean actual wait: {_seconds(wait.mean_wait)}")


def _table_row(name: str, comparison: Comparison) -> tuple[str, ...]:
    ours, jenkins = comparison.ours, comparison.jenkins
    return (
        name,
        f"{ours.rows:,}",
        _percent(ours.mape, 2),
        _percent(jenkins.mape, 2),
        _percent(ours.mdape, 2),
        _percent(jenkins.mdape, 2),
        _percent(ours.coverage),
        _percent(ours.band_width),
    )


def _accuracy(accuracy: Accuracy) -> dict[str, Any]:
    def number(value: float | None) -> float | None:
        return None if value is None or math.isnan(value) else round(value, 6)

    return {
        "rows": accuracy.rows,
        "mape": number(accuracy.mape),
        "mdape": number(accuracy.mdape),
        "coverage": number(accuracy.coverage),
        "band_width": number(accuracy.band_width),
    }


def _comparison(comparison: Comparison) -> dict[str, Any]:
    return {"ours": _accuracy(comparison.ours), "jenkins": _accuracy(comparison.jenkins)}


def _as_dict(evaluation: Evaluation) -> dict[str, Any]:
    history = evaluation.history
    return {
        "file": history.path,
        "rows": len(history.rows),
        "skipped": history.skipped,
        "malformed": {
            "count": history.malformed_count,
            "reasons": history.malformed,
            "first_lines": history.malformed_lines,
        },
        "scored": len(evaluation.scored),
        "overall": _comparison(evaluation.overall),
        "projects": {
            name: _comparison(comparison) for name, comparison in evaluation.projects.items()
        },
        "goals": [
            {
                "name": goal.name,
                "target": goal.target,
                "measured": goal.measured,
                "passed": goal.passed,
            }
            for goal in evaluation.goals
        ],
        "passed": evaluation.passed,
        "wait": None if evaluation.wait is None else _wait_dict(evaluation.wait),
    }


def _wait_dict(wait: WaitAccuracy) -> dict[str, Any]:
    """The wait figures, seconds rounded to 0.1, a figure with no rows as null."""
    figures: dict[str, Any] = {"rows": wait.rows, "unforecast": wait.unforecast}
    for name in ("mean_wait", "mae", "mdae", "baseline_mae", "baseline_mdae", "zero_mae"):
        value = getattr(wait, name)
        figures[f"{name}_seconds"] = None if math.isnan(value) else round(value, 1)
    return figures
