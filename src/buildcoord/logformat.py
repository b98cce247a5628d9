"""Render a job's structured log: JSON, or Markdown with [i] [!] [X] [OK] marks."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from buildcoord.models import Job, LogEntry

MARKS = {"info": "[i]", "warning": "[!]", "error": "[X]", "success": "[OK]"}
OUTPUT_LIMIT = 10_000
OUTPUT_KEEP = 5_000


def truncate_output(text: str) -> tuple[str, bool]:
    """Keep the first and last 5,000 characters of output over 10,000, with a notice."""
    if len(text) <= OUTPUT_LIMIT:
        return text, False
    dropped = len(text) - 2 * OUTPUT_KEEP
    notice = f"\n... [{dropped} characters truncated] ...\n"
    return text[:OUTPUT_KEEP] + notice + text[-OUTPUT_KEEP:], True


def _stamp(entry: LogEntry) -> str:
    return entry.at.strftime("%Y-%m-%dT%H:%M:%SZ")


def as_json(job: Job, entries: list[LogEntry]) -> str:
    """The log as one JSON document: the job's facts, its events and its commands."""

    def plain(entry: LogEntry) -> dict[str, Any]:
        data = asdict(entry)
        data["at"] = _stamp(entry)
        return data

    document = {
        "job_id": job.id,
        "branch": job.branch,
        "commit": job.commit,
        "status": job.status,
        "server": job.server,
        "attempt": job.attempt,
        "started_at": None if job.started_at is None else job.started_at.isoformat(),
        "finished_at": None if job.finished_at is None else job.finished_at.isoformat(),
        "duration_seconds": job.duration,
        "events": [plain(e) for e in entries if e.kind != "command"],
        "commands": [plain(e) for e in entries if e.kind == "command"],
    }
    return json.dumps(document, indent=2, sort_keys=True)


def as_markdown(job: Job, entries: list[LogEntry]) -> str:
    """The log as Markdown: a header, one line per event, a block per command, a footer."""
    lines = [
        f"# Build log: job {job.id}",
        "",
        f"- **Branch:** {job.branch}",
        f"- **Commit:** {job.commit}",
        f"- **Server:** {job.server or '-'}",
        f"- **Status:** {job.status}",
        "",
        "## Events",
        "",
    ]
    output: list[str] = []
    for entry in entries:
        mark = MARKS.get(entry.level, "[i]")
        if entry.kind == "output":
            output.append(entry.message)
            continue
        if output:
            lines += ["```", *output, "```", ""]
            output = []
        if entry.kind == "command":
            details = entry.details or {}
            code = details.get("exit_code")
            took = details.get("duration")
            lines.append(
                f"- {_stamp(entry)} {mark} command `{entry.message}`: exit {code}"
                + (f" in {took:.1f}s" if isinstance(took, int | float) else "")
            )
            argv = details.get("argv")
            if argv:
                lines.append(f"  - argv: `{' '.join(str(a) for a in argv)}`")
            text = details.get("output")
            if text:
                lines += ["", "```", str(text).rstrip("\n"), "```", ""]
        else:
            lines.append(f"- {_stamp(entry)} {mark} {entry.message}")
    if output:
        lines += ["```", *output, "```", ""]
    lines += ["", "---", ""]
    if job.duration is not None:
        lines.append(f"**Duration:** {job.duration:.1f} seconds")
    else:
        lines.append("**Duration:** still running")
    return "\n".join(lines) + "\n"
