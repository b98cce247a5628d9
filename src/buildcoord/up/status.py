"""What ``buildcoord up`` shows: the fleet read from the API, live with Rich or as plain lines.

``FleetReader.read`` takes one snapshot (servers, jobs, new build output, manifests, the
local processes); a ``LiveReport`` redraws it in place on a terminal, a ``PlainReport``
prints one line per change (for CI, pipes and logs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from buildcoord.client import Client
from buildcoord.errors import BuildcoordError
from buildcoord.models import FINISHED_STATUSES, ArtifactFile, Job, LogEntry, Server
from buildcoord.units import human_bytes

STATUS_STYLES = {
    "online": "green",
    "busy": "cyan",
    "stale": "yellow",
    "offline": "red",
    "queued": "white",
    "blocked": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
}


@dataclass(frozen=True, slots=True)
class ProcessView:
    """A local child process as the status shows it."""

    name: str
    pid: int | None
    restarts: int = 0
    last_exit: int | None = None
    restart_in: float | None = None

    def describe(self) -> str:
        """``pid 123``, ``restarting in 2 s (exit 1)`` or ``exited 1``."""
        if self.pid is not None:
            again = f", {self.restarts} restart{'s' if self.restarts > 1 else ''}"
            return f"pid {self.pid}{again if self.restarts else ''}"
        code = "" if self.last_exit is None else f" (exit {self.last_exit})"
        if self.restart_in is not None:
            return f"restarting in {self.restart_in:.0f} s{code}"
        return f"not running{code}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The fleet at one moment; ``error`` says why the coordinator did not answer."""

    processes: tuple[ProcessView, ...]
    servers: tuple[Server, ...] = ()
    running: tuple[Job, ...] = ()
    queued: tuple[Job, ...] = ()
    finished: tuple[Job, ...] = ()
    new_output: tuple[LogEntry, ...] = ()
    last_output: dict[int, str] = field(default_factory=dict)
    manifests: dict[int, list[ArtifactFile]] = field(default_factory=dict)
    error: str | None = None

    def job(self, job_id: int) -> Job | None:
        """A job of this snapshot by id."""
        for job in (*self.running, *self.queued, *self.finished):
            if job.id == job_id:
                return job
        return None


class FleetReader:
    """Reads snapshots from the coordinator, following the logs of running builds."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.cursors: dict[int, int] = {}
        self.last_output: dict[int, str] = {}
        self.manifests: dict[int, list[ArtifactFile]] = {}
        self.following: set[int] = set()

    def read(self, processes: Sequence[ProcessView]) -> Snapshot:
        """One snapshot; API failures become ``Snapshot.error`` rather than exceptions."""
        try:
            servers = self.client.list_servers()
            running = self.client.list_jobs(status="running", limit=50)
            queued = self.client.list_jobs(status="queued", limit=20)
            recent = self.client.list_jobs(limit=20)
            finished = [job for job in recent if job.status in FINISHED_STATUSES][:8]
            # Jobs that finished since the last read get one more read for their last lines.
            self.following |= {job.id for job in running}
            output = [entry for job_id in sorted(self.following) for entry in self._log(job_id)]
            self.following = {job.id for job in running}
            for job in finished:
                if job.status == "succeeded" and job.id not in self.manifests:
                    self.manifests[job.id] = self.client.manifest(job.id)
        except BuildcoordError as exc:
            return Snapshot(processes=tuple(processes), error=str(exc))
        return Snapshot(
            processes=tuple(processes),
            servers=tuple(servers),
            running=tuple(running),
            queued=tuple(queued),
            finished=tuple(finished),
            new_output=tuple(output),
            last_output=dict(self.last_output),
            manifests=dict(self.manifests),
        )

    def _log(self, job_id: int) -> list[LogEntry]:
        entries = self.client.log_entries(job_id, after=self.cursors.get(job_id, 0))
        for entry in entries:
            self.cursors[job_id] = entry.id
            if entry.message.strip():
                self.last_output[job_id] = entry.message
        return entries


def seconds(value: float | None) -> str:
    """A duration for people: ``4.2 s``, ``3 min 5 s``."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    return f"{int(value // 60)} min {int(value % 60)} s"


def job_title(job: Job) -> str:
    """``#3 main @ 1a2b3c4d5e6f``."""
    return f"#{job.id} {job.branch} @ {job.commit[:12]}"


def job_result(job: Job) -> str:
    """``succeeded (exit 0)``, ``failed (exit 2): reason`` ..."""
    code = "" if job.exit_code is None else f" (exit {job.exit_code})"
    reason = f": {job.reason}" if job.reason and job.status != "succeeded" else ""
    return f"{job.status}{code}{reason}"


def elapsed(job: Job) -> float | None:
    """How long a job ran (or has been running)."""
    if job.duration is not None:
        return job.duration
    if job.started_at is None:
        return None
    return (datetime.now(UTC) - job.started_at).total_seconds()


class Report(Protocol):
    """Where ``up`` shows the fleet."""

    def show(self, snapshot: Snapshot) -> None:
        """Show a new snapshot."""

    def note(self, line: str) -> None:
        """Show something that happened (a process exited, restarted, ...)."""

    def summarize(self, lines: Sequence[str]) -> None:
        """Show a conclusion that stays in view (the demo's comparison)."""

    def close(self) -> None:
        """Stop drawing."""


class PlainReport:
    """One timestamped line per change: for CI, pipes and log files."""

    def __init__(self) -> None:
        self.before: Snapshot | None = None

    def note(self, line: str) -> None:
        """Print a line at once."""
        click.echo(f"{datetime.now():%H:%M:%S} {line}")

    def show(self, snapshot: Snapshot) -> None:
        """Print what changed since the last snapshot."""
        before = self.before
        if snapshot.error is not None:
            if before is None or before.error != snapshot.error:
                self.note(f"coordinator not answering: {snapshot.error}")
            self.before = snapshot if before is None else before_with_error(before, snapshot)
            return
        if before is not None and before.error is not None:
            self.note("coordinator answering again")
        for line in self._changes(before, snapshot):
            self.note(line)
        self.before = snapshot

    def _changes(self, before: Snapshot | None, now: Snapshot) -> list[str]:
        lines = []
        old_servers = {} if before is None else {s.name: s.status for s in before.servers}
        for server in now.servers:
            status = old_servers.get(server.name)
            moved = status != server.status and {status, server.status} != {"online", "busy"}
            if moved and not (status is None and server.status == "offline" and before is None):
                lines.append(f"server {server.name} is {server.status}")
        old_jobs = {} if before is None else _statuses(before)
        changed = [
            job
            for job in sorted((*now.running, *now.queued, *now.finished), key=lambda j: j.id)
            if old_jobs.get(job.id) != job.status
            and not (before is None and job.status in FINISHED_STATUSES)
        ]
        for job in changed:
            if job.status == "queued":
                labels = f" (labels {','.join(job.labels)})" if job.labels else ""
                lines.append(f"job {job_title(job)} queued{labels}")
            elif job.status == "running":
                lines.append(f"job {job_title(job)} running on {job.server}")
        for entry in now.new_output:
            owner = now.job(entry.job_id)
            where = owner.server if owner is not None and owner.server else "?"
            lines.append(f"  {where} #{entry.job_id} | {entry.message}")
        for job in changed:
            if job.status not in FINISHED_STATUSES:
                continue
            where = f" on {job.server}" if job.server else ""
            took = f" in {seconds(job.duration)}" if job.duration is not None else ""
            lines.append(f"job {job_title(job)} {job_result(job)}{where}{took}")
            lines += [
                f"  #{job.id} artifact {item.path}  {human_bytes(item.size)}  sha256 {item.sha256}"
                for item in now.manifests.get(job.id, [])
            ]
        return lines

    def summarize(self, lines: Sequence[str]) -> None:
        """Print the lines."""
        for line in lines:
            self.note(line)

    def close(self) -> None:
        """Nothing to undo."""


def before_with_error(before: Snapshot, failed: Snapshot) -> Snapshot:
    """Keep the last good data, remembering the error (so it is printed once)."""
    return Snapshot(
        processes=failed.processes,
        servers=before.servers,
        running=before.running,
        queued=before.queued,
        finished=before.finished,
        manifests=before.manifests,
        error=failed.error,
    )


def _statuses(snapshot: Snapshot) -> dict[int, str]:
    return {job.id: job.status for job in (*snapshot.running, *snapshot.queued, *snapshot.finished)}


class LiveReport:
    """A Rich view redrawn in place: servers, queue, artifacts, and what happened."""

    def __init__(self, console: Console, header: str) -> None:
        self.console = console
        self.header = header
        self.notes: deque[str] = deque(maxlen=8)
        self.summary: list[str] = []
        self.snapshot: Snapshot | None = None
        self.live = Live(console=console, auto_refresh=False, transient=False)
        self.live.start()

    def note(self, line: str) -> None:
        """Add a line to the events panel."""
        self.notes.append(f"{datetime.now():%H:%M:%S} {line}")
        if self.snapshot is not None:
            self.show(self.snapshot)

    def summarize(self, lines: Sequence[str]) -> None:
        """Keep the lines below the tables."""
        self.summary = list(lines)
        if self.snapshot is not None:
            self.show(self.snapshot)

    def show(self, snapshot: Snapshot) -> None:
        """Redraw."""
        self.snapshot = snapshot
        self.live.update(self._render(snapshot), refresh=True)

    def close(self) -> None:
        """Leave the last view on screen."""
        self.live.stop()

    def _render(self, snapshot: Snapshot) -> RenderableType:
        parts: list[RenderableType] = [Text(self.header, style="bold")]
        coordinator = next((p for p in snapshot.processes if p.name == "coordinator"), None)
        if coordinator is not None:
            parts.append(Text(f"coordinator: {coordinator.describe()}", style="dim"))
        if snapshot.error is not None:
            parts.append(Text(f"coordinator not answering: {snapshot.error}", style="red"))
        parts.append(self._servers(snapshot))
        parts.append(self._queue(snapshot))
        artifacts = self._artifacts(snapshot)
        if artifacts is not None:
            parts.append(artifacts)
        if self.notes:
            parts.append(Text("\n".join(self.notes)))
        for line in self.summary:
            parts.append(Text(line, style="red" if "NOT identical" in line else "green"))
        return Group(*parts)

    def _servers(self, snapshot: Snapshot) -> Table:
        table = Table(title="Servers", title_justify="left", expand=False)
        for column in ("server", "process", "status", "heartbeat", "job", "last output"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        known = {server.name: server for server in snapshot.servers}
        names = [p.name for p in snapshot.processes if p.name != "coordinator"]
        names += [name for name in sorted(known) if name not in names]
        processes = {p.name: p for p in snapshot.processes}
        for name in names:
            server = known.get(name)
            process = processes.get(name)
            job = snapshot.job(server.running_jobs[0]) if server and server.running_jobs else None
            age = server.heartbeat_age_seconds if server else None
            table.add_row(
                name,
                process.describe() if process else "(not local)",
                Text(server.status, style=STATUS_STYLES.get(server.status, ""))
                if server
                else Text("-"),
                "-" if age is None else f"{age:.0f} s ago",
                job_title(job) if job else "-",
                (snapshot.last_output.get(job.id, "") if job else "")[:60],
            )
        return table

    def _queue(self, snapshot: Snapshot) -> Table:
        table = Table(title="Queue", title_justify="left", expand=False)
        for column in ("job", "status", "server", "time", "result"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        jobs = [*snapshot.running, *snapshot.queued[:5], *snapshot.finished[:6]]
        for job in jobs:
            finished = job.status in FINISHED_STATUSES
            table.add_row(
                job_title(job),
                Text(job.status, style=STATUS_STYLES.get(job.status, "")),
                job.server or "-",
                seconds(elapsed(job)),
                job_result(job)[:60] if finished else (",".join(job.labels) or ""),
            )
        if not jobs:
            table.add_row("(no jobs)", "", "", "", "")
        return table

    def _artifacts(self, snapshot: Snapshot) -> Table | None:
        rows = [
            (job, item)
            for job in snapshot.finished[:4]
            for item in snapshot.manifests.get(job.id, [])
        ]
        if not rows:
            return None
        table = Table(title="Artifacts", title_justify="left", expand=False)
        for column in ("job", "server", "file", "size", "sha256"):
            table.add_column(column, no_wrap=True)
        for job, item in rows:
            table.add_row(
                f"#{job.id}",
                job.server or "-",
                item.path,
                human_bytes(item.size),
                (item.sha256 or "-")[:16] + "…",
            )
        return table
