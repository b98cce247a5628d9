"""Read a build-history CSV (optionally gzipped) in the format of the shared durations data.

Columns used: ``repo, job_name, branch, started_at, duration_s, result``, and when present
``event`` (what started the build), ``queued_at`` (when it was queued: its wait is scored) and
``server`` (the runner it ran on); others are ignored.
A bad file (missing, not CSV, missing columns) raises InvalidInput; a bad row is counted by
reason and left out, never fatal.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from buildcoord.errors import InvalidInput
from buildcoord.prediction.predictor import SUCCESS_RESULTS, FinishedBuild

REQUIRED_COLUMNS = ("repo", "job_name", "branch", "started_at", "duration_s", "result")
OPTIONAL_COLUMNS = ("event", "queued_at", "server")
SKIPPED = "skipped"
EXAMPLE_LINES = 10
"""How many line numbers of malformed rows are kept to show the user."""


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One usable, non-skipped row of a history file."""

    line: int
    """Line number in the (decompressed) file, header = 1; a quoted newline counts too."""
    project: str
    job: str
    branch: str
    started_at: datetime
    duration: float
    result: str
    trigger: str | None = None
    """The ``event`` column (push, pull_request, ...) when the file has one."""
    queued_at: datetime | None = None
    """The ``queued_at`` column when the file has one and the row a value: the build waited
    ``started_at - queued_at``."""
    server: str | None = None
    """The ``server`` column (the runner the build ran on) when the file has one."""

    @property
    def key(self) -> str:
        """The build key: a job is (project, job name)."""
        return f"{self.project}\n{self.job}"

    def as_build(self) -> FinishedBuild:
        """The row as the predictor sees it."""
        return FinishedBuild(
            key=self.key,
            branch=self.branch,
            server=self.server,
            started_at=self.started_at,
            duration=self.duration,
            result=self.result,
            trigger=self.trigger,
        )


@dataclass(frozen=True, slots=True)
class History:
    """The usable rows of a file, in file order, and what was left out."""

    path: str
    rows: list[HistoryRow]
    skipped: int
    malformed: dict[str, int]
    """Reason -> number of rows left out for it."""
    malformed_lines: list[int]
    """Line numbers of the first few malformed rows."""

    @property
    def malformed_count(self) -> int:
        """Malformed rows of every reason."""
        return sum(self.malformed.values())


def read_history(path: Path) -> History:
    """Read and validate a history file; raise InvalidInput when the file as a whole is bad."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"cannot read {path}: is a directory") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInput(f"{path}: not a readable gzip file ({exc})") from None
    if b"\x00" in raw:
        raise InvalidInput(f"{path}: not a CSV file (binary content)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not a CSV file (not UTF-8 text)") from None
    return _parse(str(path), text)


def _parse(name: str, text: str) -> History:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(f"{name}: empty file, expected a CSV header") from None
    except csv.Error as exc:
        raise InvalidInput(f"{name}: not a CSV file ({exc})") from None
    columns = [column.strip() for column in header]
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise InvalidInput(
            f"{name}: not a build-history CSV: missing column(s) {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED_COLUMNS)})"
        )
    index = {column: columns.index(column) for column in REQUIRED_COLUMNS}
    for column in OPTIONAL_COLUMNS:
        if column in columns:
            index[column] = columns.index(column)
    rows: list[HistoryRow] = []
    malformed: Counter[str] = Counter()
    lines: list[int] = []
    skipped = 0
    for line, fields in _records(reader):
        if fields is None:
            reason = "unreadable CSV record"
        elif len(fields) != len(columns):
            reason = f"{len(fields)} fields instead of {len(columns)}"
        else:
            values = {column: fields[position].strip() for column, position in index.items()}
            if values["result"] == SKIPPED:
                skipped += 1
                continue
            parsed = _row(line, values)
            if isinstance(parsed, HistoryRow):
                rows.append(parsed)
                continue
            reason = parsed
        malformed[reason] += 1
        if len(lines) < EXAMPLE_LINES:
            lines.append(line)
    return History(name, rows, skipped, dict(malformed), lines)


def _records(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str] | None]]:
    """Each record with its starting line number; None for one the csv module cannot parse."""
    line = 2
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield line, None
            line = _line_after(reader, line)
            continue
        if fields:  # blank lines are not rows
            yield line, fields
        line = _line_after(reader, line)


def _line_after(reader: Iterator[list[str]], line: int) -> int:
    line_num = getattr(reader, "line_num", None)
    return line_num + 1 if isinstance(line_num, int) else line + 1


def _time(value: str) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone), or None when it is not one."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _row(line: int, values: dict[str, str]) -> HistoryRow | str:
    """The parsed row, or why it is malformed."""
    if not values["repo"] or not values["job_name"]:
        return "empty repo or job_name"
    if not values["result"]:
        return "empty result"
    started_at = _time(values["started_at"])
    if started_at is None:
        return "started_at is not an ISO 8601 time"
    try:
        duration = float(values["duration_s"])
    except ValueError:
        return "duration_s is not a number"
    if not math.isfinite(duration) or duration < 0:
        return "duration_s is negative or not finite"
    result = values["result"]
    if duration == 0 and result in SUCCESS_RESULTS:
        return "successful build of zero seconds (no relative error is defined)"
    queued_at = None
    if values.get("queued_at"):
        queued_at = _time(values["queued_at"])
        if queued_at is None:
            return "queued_at is not an ISO 8601 time"
        if queued_at > started_at:
            return "queued_at is after started_at"
    return HistoryRow(
        line=line,
        project=values["repo"],
        job=values["job_name"],
        branch=values["branch"],
        started_at=started_at,
        duration=duration,
        result=result,
        trigger=values.get("event") or None,
        queued_at=queued_at,
        server=values.get("server") or None,
    )
