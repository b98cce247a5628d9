"""buildcoord log show|tail|event|run: a job's structured log."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import click

from buildcoord import logformat
from buildcoord.cli.context import get_context
from buildcoord.errors import InvalidInput
from buildcoord.models import FINISHED_STATUSES


@click.group("log")
def log() -> None:
    """Job logs: read them, follow them, and add to them from build scripts."""


def _job_from_environment(job_id: int | None) -> tuple[int, str | None, int | None]:
    if job_id is None:
        raw = os.environ.get("BUILDCOORD_JOB_ID")
        if not raw or not raw.isdigit():
            raise InvalidInput("no job: pass --job or run inside a build (BUILDCOORD_JOB_ID)")
        job_id = int(raw)
    server = os.environ.get("BUILDCOORD_SERVER")
    token = os.environ.get("BUILDCOORD_FENCING_TOKEN")
    return job_id, server, int(token) if token and token.isdigit() else None


@log.command("show")
@click.argument("job_id", type=int)
@click.option(
    "--format",
    "style",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
def show(job_id: int, style: str) -> None:
    """Print a job's log as Markdown or JSON."""
    with get_context().client() as client:
        job = client.get_job(job_id)
        entries = client.log_entries(job_id)
    if style == "json":
        click.echo(logformat.as_json(job, entries))
    else:
        click.echo(logformat.as_markdown(job, entries), nl=False)


@log.command("tail")
@click.argument("job_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job finishes.")
def tail(job_id: int, follow: bool) -> None:
    """Print a job's log lines; with --follow, as they arrive."""
    cursor = 0
    with get_context().client() as client:
        while True:
            for entry in client.log_entries(job_id, after=cursor):
                cursor = entry.id
                mark = logformat.MARKS.get(entry.level, "[i]")
                text = entry.message if entry.kind == "output" else f"{mark} {entry.message}"
                click.echo(text)
            if not follow:
                return
            if client.get_job(job_id).status in FINISHED_STATUSES:
                # One last read: lines written just before the job finished.
                for entry in client.log_entries(job_id, after=cursor):
                    cursor = entry.id
                    click.echo(entry.message)
                return
            time.sleep(0.5)


@log.command("event")
@click.argument("message")
@click.option(
    "--level",
    type=click.Choice(["info", "warning", "error", "success"]),
    default="info",
    show_default=True,
)
@click.option("--job", "job_id", type=int, help="Default: $BUILDCOORD_JOB_ID.")
def event(message: str, level: str, job_id: int | None) -> None:
    """Add an event to a job's log."""
    job, server, token = _job_from_environment(job_id)
    with get_context().client() as client:
        client.append_log(
            job,
            [{"at": time.time(), "kind": "event", "level": level, "message": message}],
            server=server,
            fencing_token=token,
        )


@log.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--job", "job_id", type=int, help="Default: $BUILDCOORD_JOB_ID.")
def run(name: str, argv: tuple[str, ...], job_id: int | None) -> None:
    """Run a step and record it: NAME -- ARGV...; exits with its code."""
    job, server, token = _job_from_environment(job_id)
    started = time.monotonic()
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        code, output = result.returncode, result.stdout + result.stderr
    except OSError as exc:
        code, output = 127, f"cannot run {argv[0]}: {exc.strerror}"
    took = time.monotonic() - started
    sys.stdout.write(output)
    with get_context().client() as client:
        client.append_log(
            job,
            [
                {
                    "at": time.time(),
                    "kind": "command",
                    "level": "success" if code == 0 else "error",
                    "message": name,
                    "details": {
                        "argv": list(argv),
                        "exit_code": code,
                        "duration": took,
                        "output": output,
                    },
                }
            ],
            server=server,
            fencing_token=token,
        )
    raise SystemExit(code)
