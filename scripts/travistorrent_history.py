"""Turn TravisTorrent build lists into a history file for ``buildcoord predict evaluate``.

The out-of-sample figures in docs/prediction.md come from public Travis CI build lists
harvested by the TravisTorrent tools, one ``repo-data-travis.csv`` per project (in the GitHub
repositories ``monperrus/travistorrent-java-ci-build-dataset``, ``<owner>@<repo>/``, and
``TestRoots/travistorrent-tools``, ``build_logs/<owner>@<repo>/``). They are not shipped (their
licence is not stated); with a copy, this script writes the same history::

    .venv/bin/python scripts/travistorrent_history.py OUT.csv.gz \\
        Graylog2/graylog2-server=Graylog2@graylog2-server/repo-data-travis.csv ...

Input columns: ``build_id,commit,pull_req,branch,status,duration,started_at,jobs,event_type``
(the newer harvest writes ``jobs`` unquoted, so a row has more fields: it is read by position,
``event_type`` last and the job ids between ``started_at`` and it). Output: ``repo`` (the name
given), ``job_name`` ``travis build (N jobs)`` (a build's duration is the sum of its jobs',
so each matrix size is its own key), ``branch`` (for a pull request: its target branch, as
Travis gives it), ``started_at`` (ISO 8601, UTC), ``duration_s``, ``result`` (passed →
success; failed and errored → failure), ``event`` (push, pull_request, ...). A cancelled build,
or one without a start time or a positive duration, is left out and counted.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

RESULTS = {"passed": "success", "failed": "failure", "errored": "failure"}
HEADER = ("repo", "job_name", "branch", "started_at", "duration_s", "result", "event")
_JOB_ID = re.compile(r"\d+")


def convert(project: str, path: Path, skipped: Counter[str]) -> list[tuple[str, ...]]:
    """The history rows of one project's build list; what is left out is counted by reason."""
    rows = []
    with path.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        next(reader, None)  # the header
        for fields in reader:
            if len(fields) < 9:
                skipped["fewer than 9 fields"] += 1
                continue
            build_id, _commit, _pull, branch, status, duration, started = fields[:7]
            event = fields[-1].strip()
            jobs = len(_JOB_ID.findall(",".join(fields[7:-1])))
            if status not in RESULTS:
                skipped[f"status {status or 'empty'}"] += 1
                continue
            try:
                seconds = float(duration)
                start = datetime.strptime(started.strip(), "%Y-%m-%d %H:%M:%S UTC")
            except ValueError:
                skipped["no start time or duration"] += 1
                continue
            if seconds <= 0 or not build_id.strip():
                skipped["no positive duration"] += 1
                continue
            rows.append(
                (
                    project,
                    f"travis build ({jobs} job{'' if jobs == 1 else 's'})",
                    branch,
                    start.replace(tzinfo=UTC).isoformat(),
                    f"{seconds:g}",
                    RESULTS[status],
                    event,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="history file to write (.csv or .csv.gz)")
    parser.add_argument("projects", nargs="+", help="OWNER/REPO=path/to/repo-data-travis.csv")
    options = parser.parse_args()
    rows: list[tuple[str, ...]] = []
    skipped: Counter[str] = Counter()
    for item in options.projects:
        project, separator, name = item.partition("=")
        if not separator or not project or not name:
            parser.error(f"{item!r}: expected OWNER/REPO=PATH")
        path = Path(name)
        if not path.is_file():
            parser.error(f"{path}: no such file")
        found = convert(project, path, skipped)
        print(f"{project}: {len(found):,} builds", file=sys.stderr)
        rows += found
    rows.sort(key=lambda row: (row[3], row[0]))
    opener = gzip.open if options.output.suffix == ".gz" else open
    with opener(options.output, "wt", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)
    left = ", ".join(f"{count:,} {reason}" for reason, count in sorted(skipped.items()))
    print(f"wrote {len(rows):,} builds to {options.output}; left out: {left or 'none'}")


if __name__ == "__main__":
    main()
