"""buildcoord queue add|list|show|next|complete|cancel|retry: the build queue."""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import TypeAdapter

from buildcoord.cli.context import get_context, json_option, split_list
from buildcoord.cli.output import emit_json, stamp
from buildcoord.client import Client
from buildcoord.errors import InvalidInput, NotFound
from buildcoord.models import JOB_STATUSES, ForecastJob, Job, JobForecast, LegacyRecord


@click.group()
def queue() -> None:
    """Queue builds, claim them, finish them."""


def _ids(value: str | None) -> list[int]:
    ids = []
    for part in split_list(value):
        if not part.isdigit():
            raise InvalidInput(f"invalid dependency {part!r}: expected job ids like 12,13")
        ids.append(int(part))
    return ids


@queue.command("add")
@click.argument("branch")
@click.argument("commit", required=False)
@click.option(
    "--priority", type=int, help="1 (highest) to 10; default: the branch's setting, else 5."
)
@click.option("--depends-on", help="Comma-separated job ids that must succeed first.")
@click.option("--labels", help="Comma-separated labels the server must have.")
@click.option(
    "--trigger",
    help="What started this build, a short lowercase word (e.g. pull_request); default: manual.",
)
@click.option(
    "--forecast/--no-forecast",
    default=True,
    show_default=True,
    help="Print when the job is predicted to start and finish.",
)
def add(
    branch: str,
    commit: str | None,
    priority: int | None,
    depends_on: str | None,
    labels: str | None,
    trigger: str | None,
    forecast: bool,
) -> None:
    """Queue a build of BRANCH at COMMIT (default: the branch's tip); prints the job id last.

    Before it: the server the job is predicted to run on and its predicted start and finish
    (the queue simulated with predicted durations), or why there is no forecast.
    """
    with get_context().client() as client:
        submitted = (client.submit_job_with_forecast if forecast else client.submit_job)(
            branch,
            commit,
            priority=priority,
            depends_on=_ids(depends_on),
            labels=split_list(labels),
            trigger=trigger,
        )
    job, found = (
        (submitted.job, submitted.forecast)
        if isinstance(submitted, ForecastJob)
        else (submitted, None)
    )
    state = f" ({job.status}: {job.blocked_reason})" if job.status == "blocked" else ""
    click.echo(f"Added job: {job.id} (priority: {job.priority}, branch: {job.branch}){state}")
    if forecast:
        click.echo(_new_forecast(found))
    click.echo(job.id)


def _new_forecast(found: JobForecast | None) -> str:
    """The forecast line of ``queue add``."""
    if found is None:
        return "Forecast: none (the coordinator gave none)"
    start, finish = found.predicted_start, found.predicted_finish
    if start is None or finish is None or found.expected_remaining_seconds is None:
        return f"Forecast: none ({found.note or 'no reason given'})"
    return (
        f"Forecast: starts {stamp(start)} on {found.server}, finishes {stamp(finish)}"
        f" (in {_span(found.expected_remaining_seconds)})"
    )


def _span(seconds: float) -> str:
    """A duration for people: 45 s, 12 min 5 s, 3 h 20 min."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _line(job: Job, *, with_status: bool) -> str:
    status = f" [{job.status}]" if with_status else ""
    extra = ""
    if job.status == "blocked":
        extra = f" ({job.blocked_reason})"
    elif job.status == "queued" and job.pending_dependencies:
        extra = f" (waiting for {job.pending_dependencies} dependencies)"
    return (
        f"{job.id}{status} priority:{job.priority} {job.branch} {job.commit[:12]} "
        f"assigned_to:{job.server or 'none'} attempt:{job.attempt}{extra}"
    )


def _forecast(job: Job, forecast: JobForecast | None) -> str:
    """What the forecast adds to a listed job's line."""
    if forecast is None:
        return ""
    remaining = forecast.expected_remaining_seconds
    if forecast.predicted_finish is None or remaining is None:
        return f" forecast:none ({forecast.note})" if forecast.note else ""
    if job.status == "running":
        return f" expected:{remaining:.0f}s_left finish:{stamp(forecast.predicted_finish)}"
    return (
        f" predicted_start:{stamp(forecast.predicted_start)} on:{forecast.server}"
        f" predicted_finish:{stamp(forecast.predicted_finish)}"
    )


def _json_item(item: ForecastJob) -> dict[str, Any]:
    data: dict[str, Any] = TypeAdapter(Job).dump_python(item.job, mode="json")
    data["forecast"] = (
        None
        if item.forecast is None
        else TypeAdapter(JobForecast).dump_python(item.forecast, mode="json")
    )
    return data


@queue.command("list")
@click.argument("status", required=False, default="all", type=click.Choice([*JOB_STATUSES, "all"]))
@click.option("--branch")
@click.option("--server")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--seed-id", help="Only the job imported from the seed under this id.")
@json_option
def list_(
    status: str,
    branch: str | None,
    server: str | None,
    limit: int,
    seed_id: str | None,
    as_json: bool,
) -> None:
    """List jobs (queued ones in the order they will be claimed).

    A queued job shows its predicted start and finish (and on which server); a running one
    the time it is expected to need still (docs/prediction.md, "Live predictions").
    """
    with get_context().client() as client:
        found = client.list_jobs_with_forecast(
            status=status, branch=branch, server=server, limit=limit
        )
        if seed_id is not None:
            wanted = int(client.legacy_record("job", seed_id).local_id)
            found = [item for item in found if item.job.id == wanted]
            if not found:
                job = client.get_job(wanted)
                if status in ("all", job.status):
                    found = [ForecastJob(job=job, forecast=None)]
    if as_json:
        click.echo(json.dumps([_json_item(item) for item in found], indent=2, sort_keys=True))
        return
    if not found:
        click.echo("No jobs")
    for item in found:
        line = _line(item.job, with_status=status == "all")
        click.echo(line + _forecast(item.job, item.forecast))


def _find(client: Client, key: str) -> tuple[Job, LegacyRecord | None]:
    """A job by its id, or by the id it had in the seed (``job_1761781030``), and the seed's
    record of it when it was imported."""
    if key.isdigit() and len(key) <= 19:
        job = client.get_job(int(key))
        try:
            return job, client.legacy_record("job", str(job.id))
        except NotFound:
            return job, None
    if not 0 < len(key) <= 200 or "/" in key:
        raise click.BadParameter(f"{key!r} is neither a job id nor a seed job id", param_hint="JOB")
    record = client.legacy_record("job", key)
    return client.get_job(int(record.local_id)), record


@queue.command("show")
@click.argument("job_id", metavar="JOB")
@json_option
def show(job_id: str, as_json: bool) -> None:
    """Show one job, by its id or by its seed id (an imported job: ``job_1761781030``)."""
    with get_context().client() as client:
        job, record = _find(client, job_id)
    if as_json:
        data: dict[str, Any] = TypeAdapter(Job).dump_python(job, mode="json")
        if record is not None:
            data["seed"] = {"id": record.legacy_id, "attributes": record.attributes}
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    rows = [
        ("Job", job.id),
        ("Branch", job.branch),
        ("Commit", job.commit),
        ("Status", job.status),
        ("Priority", job.priority),
        ("Attempt", f"{job.attempt} of {job.max_attempts}"),
        ("Depends on", ", ".join(map(str, job.depends_on)) or "none"),
        ("Labels", ", ".join(job.labels) or "none"),
        ("Trigger", job.trigger or "unknown"),
        ("Server", job.server or "-"),
        ("Fencing token", job.fencing_token),
        ("Lease expires", stamp(job.lease_expires_at)),
        ("Created", stamp(job.created_at)),
        ("Started", stamp(job.started_at)),
        ("Finished", stamp(job.finished_at)),
        ("Exit code", "-" if job.exit_code is None else job.exit_code),
        ("Duration", "-" if job.duration is None else f"{job.duration:.1f}s"),
    ]
    if job.blocked_reason:
        rows.append(("Blocked", job.blocked_reason))
    if job.reason:
        rows.append(("Reason", job.reason))
    if record is not None:
        rows.append(("Seed id", record.legacy_id))
        rows += [(f"Seed {key}", value) for key, value in sorted(record.attributes.items())]
    for key, value in rows:
        click.echo(f"{key + ':':15} {value}")


@queue.command("next")
@click.option("--server", required=True, help="The server taking the job.")
@json_option
def next_(server: str, as_json: bool) -> None:
    """Claim the next eligible job for SERVER; exit 1 if none."""
    with get_context().client() as client:
        job = client.claim_job(server)
    if job is None:
        click.echo("No eligible jobs found", err=True)
        raise SystemExit(1)
    if as_json:
        emit_json(job)
        return
    click.echo(f"Assigned job {job.id} ({job.branch} {job.commit}) to {server}")
    click.echo(f"Fencing token: {job.fencing_token}; lease expires {stamp(job.lease_expires_at)}")
    click.echo(job.id)


@queue.command("complete")
@click.argument("job_id", type=int)
@click.option("--status", required=True, type=click.Choice(["succeeded", "failed"]))
@click.option("--exit-code", type=int)
@click.option("--duration", type=float, help="Seconds (default: measured from the claim).")
@click.option("--reason", help="Why it failed, for the record.")
@click.option("--server", help="Lease holder (required with an agent token).")
@click.option("--fencing-token", type=int, help="The lease's fencing token (from queue next).")
def complete(
    job_id: int,
    status: str,
    exit_code: int | None,
    duration: float | None,
    reason: str | None,
    server: str | None,
    fencing_token: int | None,
) -> None:
    """Finish running job JOB_ID as succeeded or failed."""
    with get_context().client() as client:
        job = client.complete_job(
            job_id,
            status=status,
            exit_code=exit_code,
            duration=duration,
            reason=reason,
            server=server,
            fencing_token=fencing_token,
        )
    click.echo(f"Job {job.id} completed with status: {job.status}")


@queue.command("cancel")
@click.argument("job_id", type=int)
@click.option("--reason")
def cancel(job_id: int, reason: str | None) -> None:
    """Cancel a queued, blocked or running job (dependents become blocked)."""
    with get_context().client() as client:
        job = client.cancel_job(job_id, reason=reason)
    click.echo(f"Job {job.id} cancelled")


@queue.command("priority")
@click.argument("job_id", type=int)
@click.argument("priority", type=int)
def priority(job_id: int, priority: int) -> None:
    """Change a queued or blocked job's priority (1 highest to 10)."""
    with get_context().client() as client:
        job = client.set_job_priority(job_id, priority)
    click.echo(f"Job {job.id} priority: {job.priority}")


@queue.command("retry")
@click.argument("job_id", type=int)
def retry(job_id: int) -> None:
    """Queue a failed or cancelled job again as a new attempt."""
    with get_context().client() as client:
        job = client.retry_job(job_id)
    click.echo(f"Job {job.id} queued again (attempt {job.attempt})")
