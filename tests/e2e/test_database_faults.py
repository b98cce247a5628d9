"""The database fails under a running fleet: real PostgreSQL, real coordinator, real agents.

PostgreSQL restarted mid-build (a cluster of the test's own, never the shared one) and every
backend of the coordinator's database killed again and again under load. Whatever happens,
each job ends in exactly one final state, no job runs twice at once, and every log line the
coordinator acknowledged is kept.

The build prints numbered lines (``line 1`` .. ``line N``) and appends a timestamp per line
to a marker file per job and lease (``<job>.<fencing token>.<server>``): a start, a tick
per line, an end. The span from start to last stamp is when that attempt ran, for the
overlap check.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from buildcoord.client import Client
from buildcoord.errors import BuildcoordError
from buildcoord.models import Job, LogEntry
from live_fleet import LiveFleet, live_fleet, make_repository, wait_for
from postgres_cluster import (
    EXTERNAL_URL_ENV,
    PostgresServer,
    PostgresUnavailableError,
    ThrowawayCluster,
    find_bindir,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BUILD = """#!/usr/bin/env bash
set -eu
lines="$1"
pause="$2"
mark="$3/$BUILDCOORD_JOB_ID.$BUILDCOORD_FENCING_TOKEN.$BUILDCOORD_SERVER"
echo "start $EPOCHREALTIME" >> "$mark"
for i in $(seq 1 "$lines"); do
    echo "line $i"
    echo "tick $EPOCHREALTIME" >> "$mark"
    sleep "$pause"
done
echo "end $EPOCHREALTIME" >> "$mark"
"""

FINAL = ("succeeded", "failed", "cancelled")
NUMBERED = re.compile(r"line (\d+)")


@dataclass(frozen=True)
class Run:
    """One attempt of a build as its marker file tells it."""

    job_id: int
    fencing_token: int
    server: str
    start: float
    last: float
    ticks: int
    ended: bool


def runs_of(markers: Path) -> dict[int, list[Run]]:
    """Every build attempt that started, by job, in the order they started."""
    runs: dict[int, list[Run]] = {}
    for path in markers.iterdir():
        job, token, server = path.name.split(".", 2)
        stamps: list[tuple[str, float]] = []
        for line in path.read_text().splitlines():
            kind, _, stamp = line.partition(" ")
            try:  # a build killed mid-write may leave half a line
                stamps.append((kind, float(stamp)))
            except ValueError:
                continue
        if not stamps:
            continue
        kinds = [kind for kind, _ in stamps]
        times = [at for _, at in stamps]
        runs.setdefault(int(job), []).append(
            Run(
                int(job),
                int(token),
                server,
                min(times),
                max(times),
                kinds.count("tick"),
                "end" in kinds,
            )
        )
    return {job: sorted(found, key=lambda run: run.start) for job, found in runs.items()}


def set_up(fleet: LiveFleet, tmp_path: Path, markers: Path, lines: int, pause: float) -> None:
    """The branch whose build prints ``lines`` numbered lines ``pause`` seconds apart; two
    agents."""
    repo = tmp_path / "repo"
    make_repository(repo, {"build.sh": BUILD})
    markers.mkdir()
    with fleet.client() as client:
        client.add_branch("main", repo=str(repo), command=f"./build.sh {lines} {pause} {markers}")
    for name in ("build1", "build2"):
        fleet.register(name)
        fleet.start_agent(name)


def whole_log(client: Client, job_id: int) -> list[LogEntry]:
    """Every entry of a job's log, page after page."""
    entries: list[LogEntry] = []
    while True:
        page = client.log_entries(job_id, after=entries[-1].id if entries else 0)
        if not page:
            return entries
        entries.extend(page)


def numbered(entries: Sequence[LogEntry], attempt: int) -> list[int]:
    """The numbers of the build's numbered output lines of one attempt, as kept."""
    found = []
    for entry in entries:
        match = NUMBERED.fullmatch(entry.message.strip())
        if entry.kind == "output" and entry.attempt == attempt and match:
            found.append(int(match.group(1)))
    return found


def jobs_now(fleet: LiveFleet, job_ids: Sequence[int]) -> list[Job] | None:
    """The jobs as the coordinator sees them, or None while it cannot tell."""
    try:
        with fleet.client() as client:
            return [client.get_job(job_id) for job_id in job_ids]
    except BuildcoordError:
        return None


def all_final(fleet: LiveFleet, job_ids: Sequence[int], timeout: float) -> list[Job]:
    """Wait until every job is in a final state; return them."""

    def done() -> list[Job] | None:
        jobs = jobs_now(fleet, job_ids)
        return jobs if jobs and all(job.status in FINAL for job in jobs) else None

    return wait_for("every job to finish", done, timeout=timeout, interval=0.3)


def healthy(fleet: LiveFleet) -> bool:
    """The coordinator process is alive and its health probe answers 200."""
    assert fleet.coordinator is not None
    assert fleet.coordinator.poll() is None, "the coordinator exited:\n" + tail(
        fleet.home / "coordinator.log"
    )
    try:
        return httpx.get(f"{fleet.url}/api/v1/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


def logs_of(fleet: LiveFleet) -> str:
    """The tails of the coordinator's and the agents' logs, for failure messages."""
    parts = [f"--- coordinator ---\n{tail(fleet.home / 'coordinator.log')}"]
    for name in fleet.agents:
        parts.append(f"--- agent {name} ---\n{tail(fleet.home / f'agent-{name}.log')}")
    return "\n".join(parts)


def check_end_state(
    fleet: LiveFleet, job_ids: Sequence[int], markers: Path, lines: int
) -> list[Job]:
    """Exactly one final state per job, no job run twice at once, every acknowledged line
    kept (1..lines, in order, once) for each succeeded job. Returns the jobs."""
    context = logs_of(fleet)
    runs = runs_of(markers)
    with fleet.client() as client:
        jobs = [client.get_job(job_id) for job_id in job_ids]
        for job in jobs:
            assert job.status in FINAL, f"job {job.id} is stuck {job.status}\n{context}"
            events = client.list_events(subject=f"job:{job.id}", limit=1000)
            finals = [event.kind for event in events if event.kind in {f"job.{s}" for s in FINAL}]
            assert len(finals) == 1, f"job {job.id} ended {finals}\n{context}"

            spans = runs.get(job.id, [])
            for earlier, later in itertools.pairwise(spans):
                assert earlier.last < later.start, (
                    f"job {job.id} ran twice at once: {earlier} and {later}\n{context}"
                )

            if job.status != "succeeded":
                continue
            final_run = [run for run in spans if run.fencing_token == job.fencing_token]
            assert [(run.server, run.ticks, run.ended) for run in final_run] == [
                (job.server, lines, True)
            ], f"job {job.id}: {spans}"
            kept = numbered(whole_log(client, job.id), job.attempt)
            assert kept == list(range(1, lines + 1)), (
                f"job {job.id} attempt {job.attempt} kept lines {kept}\n{context}"
            )
    return jobs


# --- PostgreSQL restarted mid-build ------------------------------------------------------------


@pytest.fixture
def own_cluster() -> Iterator[tuple[ThrowawayCluster, PostgresServer]]:
    """A throwaway PostgreSQL cluster of this test's own, free to stop and start again."""
    try:
        bindir = find_bindir()
    except PostgresUnavailableError as exc:
        if os.environ.get(EXTERNAL_URL_ENV, "").strip():
            pytest.skip(f"restarting PostgreSQL needs a cluster of the test's own: {exc}")
        raise
    cluster = ThrowawayCluster(bindir)
    atexit.register(cluster.stop)  # backstop if the session dies before teardown
    try:
        yield cluster, cluster.start()
    finally:
        cluster.stop()
        atexit.unregister(cluster.stop)


def refused(url: str) -> bool:
    """Whether PostgreSQL at url refuses a connection (it is down)."""
    try:
        with psycopg.connect(url, connect_timeout=2):
            return False
    except psycopg.Error:
        return True


@pytest.mark.postgresql
def test_postgresql_restarted_mid_build_the_coordinator_reconnects_and_the_builds_report_after(
    tmp_path: Path, own_cluster: tuple[ThrowawayCluster, PostgresServer]
) -> None:
    cluster, server = own_cluster
    database = server.url_for(server.create_database())
    lines = 50  # 10 s of build, a line every 0.2 s
    markers = tmp_path / "markers"
    settings = {"heartbeat_interval_seconds": "1", "job_lease_seconds": "30"}
    with live_fleet(tmp_path / "home", db=database, **settings) as fleet:
        set_up(fleet, tmp_path, markers, lines, 0.2)
        with fleet.client() as client:
            job_ids = [client.submit_job("main").id for _ in range(4)]
        assert fleet.coordinator is not None
        coordinator_pid = fleet.coordinator.pid

        def two_builds_under_way() -> list[int] | None:
            with fleet.client() as client:
                running = client.list_jobs(status="running")
                under_way = [
                    job.id
                    for job in running
                    if len(numbered(client.log_entries(job.id), job.attempt)) >= 5
                ]
            return under_way if len(under_way) == 2 else None

        interrupted = wait_for("two builds under way", two_builds_under_way, timeout=60)

        # Fast, not immediate: the throwaway cluster runs with synchronous_commit=off, so an
        # immediate stop could lose commits PostgreSQL had already acknowledged.
        cluster.stop_server("fast")
        try:
            assert refused(database)
            with pytest.raises(BuildcoordError), fleet.client() as client:
                client.get_job(job_ids[0])
            time.sleep(3)
        finally:
            cluster.start_again()

        wait_for("the coordinator to be healthy again", lambda: healthy(fleet), timeout=30)
        jobs = all_final(fleet, job_ids, timeout=120)
        assert fleet.coordinator.pid == coordinator_pid
        assert fleet.coordinator.poll() is None

        context = logs_of(fleet)
        assert [(job.status, job.attempt) for job in jobs] == [("succeeded", 1)] * 4, context
        check_end_state(fleet, job_ids, markers, lines)
        runs = runs_of(markers)
        for job_id in interrupted:  # the builds the outage hit ran once, unbroken
            assert len(runs[job_id]) == 1, runs[job_id]


# --- every backend killed, again and again, under load ----------------------------------------

KILL_BACKENDS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""
# A storm: every 0.1 s for 8 s, so that transactions in flight are killed too, not only idle
# pooled connections. It found three faults, now fixed: the pool's reconnect on checkout
# meeting a second dead connection answered 500 (now 503, store/engine.py checked_out) and
# the agent dropped the job's queued log lines as if refused (a 5xx is now passing); a claim
# committed whose recipe read then failed left the job leased to nobody (the read is retried,
# services/queue.py); an agent whose claim failed waited for its 30 s safety poll with jobs
# queued (it now tries again after 0.5 s, doubling to 10 s).
KILL_ROUNDS = 80
KILL_PAUSE_SECONDS = 0.1


def test_the_databases_connections_killed_during_load_lose_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    lines = 10  # 1 s of build
    markers = tmp_path / "markers"
    settings = {"heartbeat_interval_seconds": "1", "job_lease_seconds": "15"}
    with live_fleet(tmp_path / "home", db=postgres_url, **settings) as fleet:
        set_up(fleet, tmp_path, markers, lines, 0.1)
        with fleet.client() as client:
            job_ids = [client.submit_job("main").id for _ in range(20)]
        wait_for("the first builds to start", lambda: len(runs_of(markers)) >= 2, timeout=60)

        killed = 0
        with psycopg.connect(postgres_url, autocommit=True, connect_timeout=10) as conn:
            for _ in range(KILL_ROUNDS):
                row = conn.execute(KILL_BACKENDS).fetchone()
                killed += int(row[0]) if row else 0
                time.sleep(KILL_PAUSE_SECONDS)
        assert killed > 0, "no backend was killed: the fault was not injected"

        all_final(fleet, job_ids, timeout=150)
        wait_for("the coordinator to be healthy", lambda: healthy(fleet), timeout=30)
        jobs = check_end_state(fleet, job_ids, markers, lines)
        context = logs_of(fleet)
        assert [job.status for job in jobs] == ["succeeded"] * len(job_ids), context
        assert len(runs_of(markers)) == len(job_ids)
