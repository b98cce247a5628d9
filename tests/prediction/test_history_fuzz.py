"""A hostile history file: whatever its rows hold, ``predict evaluate`` reads what it can,
counts the rest as malformed, and reports finite figures (or says why it cannot) — it never
crashes, never prints NaN in its JSON."""

from __future__ import annotations

import csv
import json
import math
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildcoord.cli import cli
from buildcoord.errors import InvalidInput
from buildcoord.prediction.evaluation import evaluate
from buildcoord.prediction.history_file import read_history

COLUMNS = ("repo", "job_name", "branch", "started_at", "duration_s", "result")
OPTIONAL = ("event", "queued_at", "server")

PLAUSIBLE_TIMES = st.integers(min_value=0, max_value=600).map(
    lambda minute: f"2025-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z"
)
TIMES = st.one_of(
    PLAUSIBLE_TIMES,
    PLAUSIBLE_TIMES,
    PLAUSIBLE_TIMES,
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00",
            "9999-12-31T23:59:59+14:00",
            "2025-01-01T00:00:00Z",
            "2025-01-01T00:00:00-12:00",
            "2025-13-01T00:00:00Z",
            "",
            "now",
        ]
    ),
)
NUMBERS = st.one_of(
    st.integers(min_value=1, max_value=900).map(str),
    st.integers(min_value=1, max_value=900).map(str),
    st.integers(min_value=1, max_value=900).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["1e308", "1e-320", "-0", "0", "nan", "inf", "", "12s", "1_000"]),
)
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
RESULTS = st.sampled_from(
    ["success"] * 6 + ["succeeded", "failure", "cancelled", "skipped", "lost", ""]
)
EVENTS = st.sampled_from(["push", "pull_request", "", "schedule"])
SMALL_WORDS = st.sampled_from(["a", "b", "main", "acme/app", "x" * 200])


@st.composite
def history_files(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    optional = draw(st.lists(st.sampled_from(OPTIONAL), unique=True))
    header = list(COLUMNS) + optional
    rows = []
    for _ in range(draw(st.integers(min_value=0, max_value=80) | st.integers(20, 80))):
        if draw(st.integers(0, 9)) < 7:  # most rows plausible, so that rows get scored
            row = {
                "repo": "acme/app",
                "job_name": draw(st.sampled_from(["build", "test"])),
                "branch": draw(st.sampled_from(["main", "dev"])),
                "started_at": draw(PLAUSIBLE_TIMES),
                "duration_s": draw(st.integers(min_value=1, max_value=900).map(str)),
                "result": draw(st.sampled_from(["success", "success", "failure", "lost"])),
                "event": draw(EVENTS),
                "queued_at": draw(PLAUSIBLE_TIMES),
                "server": draw(st.sampled_from(["build1", "build2", ""])),
            }
        else:
            row = {
                "repo": draw(st.one_of(SMALL_WORDS, TEXT)),
                "job_name": draw(st.one_of(SMALL_WORDS, TEXT)),
                "branch": draw(st.one_of(SMALL_WORDS, TEXT)),
                "started_at": draw(TIMES),
                "duration_s": draw(NUMBERS),
                "result": draw(RESULTS),
                "event": draw(EVENTS),
                "queued_at": draw(TIMES),
                "server": draw(st.one_of(SMALL_WORDS, TEXT)),
            }
        fields = [row[column] for column in header]
        if draw(st.integers(0, 20)) == 0:  # now and then a row of the wrong length
            fields = fields[: draw(st.integers(0, len(fields)))]
        rows.append(fields)
    return header, rows


def _no_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_no_nan(item) for item in value.values())
    if isinstance(value, list):
        return all(_no_nan(item) for item in value)
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history_files())
def test_any_history_file_is_evaluated_or_refused_with_a_clear_error(
    content: tuple[list[str], list[list[str]]],
) -> None:
    header, rows = content
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "history.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
        try:
            history = read_history(path)
        except InvalidInput:
            return
        written = sum(1 for row in rows if row)  # an empty row is a blank line: no row
        assert len(history.rows) + history.malformed_count + history.skipped == written
        evaluate(history)
        outcome = CliRunner().invoke(cli, ["predict", "evaluate", str(path), "--json"])
        assert outcome.exit_code == 0, outcome.output
        assert _no_nan(json.loads(outcome.stdout))
        printed = CliRunner().invoke(cli, ["predict", "evaluate", str(path)])
        assert printed.exit_code == 0, printed.output
