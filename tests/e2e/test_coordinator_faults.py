"""A coordinator killed with SIGKILL in a burst of claims and completions, or stopped with
SIGTERM under a stream of requests: after each, every job ends in exactly one final state, no
job ran twice at once, every log line kept, every answered request stored and no unanswered
one half-stored."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from buildcoord.client import Client
from buildcoord.errors import BuildcoordError
from buildcoord.models import Job
from live_fleet import live_fleet, make_repository, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

LINES = 8

# Each attempt records when it ran (start and end, by fencing token) and prints numbered lines.
BUILD = f"""#!/usr/bin/env bash
set -eu
run="$1/$BUILDCOORD_JOB_ID.$BUILDCOORD_FENCING_TOKEN"
date +%s.%N > "$run.start"
trap 'date +%s.%N > "$run.end"' EXIT
for i in $(seq 1 {LINES}); do echo "line $i of $BUILDCOORD_JOB_ID"; sleep 0.1; done
"""

FINAL = ("succeeded", "failed", "cancelled")


def all_jobs(client: Client, ids: list[int]) -> dict[int, Job]:
    """The jobs by id, as the coordinator sees them now."""
    return {job_id: client.get_job(job_id) for job_id in ids}


def assert_each_ran_once_at_a_time_and_kept_its_log(
    client: Client, ids: list[int], markers: Path
) -> None:
    """Every job succeeded; no two attempts of one job overlapped; its log is lines 1..N."""
    jobs = all_jobs(client, ids)
    assert {job_id: job.status for job_id, job in jobs.items()} == dict.fromkeys(ids, "succeeded")
    for job_id in ids:
        runs = []
        for start in markers.glob(f"{job_id}.*.start"):
            end = start.with_suffix(".end")
            runs.append((float(start.read_text()), float(end.read_text()) if end.exists() else 0))
        runs.sort()
        assert runs, f"job {job_id} never ran"
        for (_, first_end), (second_start, _) in itertools.pairwise(runs):
            assert first_end, f"job {job_id}: an attempt left no end"
            assert first_end <= second_start, f"job {job_id} ran twice at once"
        lines = [e.message for e in client.log_entries(job_id) if e.message.startswith("line ")]
        assert lines == [f"line {i} of {job_id}" for i in range(1, LINES + 1)], job_id


def test_a_coordinator_killed_in_a_burst_of_claims_and_completions_loses_nothing(
    tmp_path: Path,
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    repo = tmp_path / "repo"
    make_repository(repo, {"build.sh": BUILD})
    with live_fleet(tmp_path / "home", heartbeat_interval_seconds="1") as fleet:
        with fleet.client() as operator:
            operator.add_branch("main", repo=str(repo), command=f"./build.sh {markers}")
            for name in ("build1", "build2", "build3"):
                fleet.register(name)
                fleet.start_agent(name)
            ids = [operator.submit_job("main").id for _ in range(30)]

            def some_done() -> bool:
                done = sum(1 for job in operator.list_jobs(status="succeeded"))
                return done >= 6

            wait_for("a few builds done", some_done, timeout=90, interval=0.1)
        assert fleet.coordinator is not None
        os.kill(fleet.coordinator.pid, signal.SIGKILL)
        fleet.coordinator.wait(timeout=10)
        time.sleep(1)
        fleet.start_coordinator()

        with fleet.client() as operator:

            def all_final() -> bool:
                return all(job.status in FINAL for job in all_jobs(operator, ids).values())

            wait_for("every job to end", all_final, timeout=150, interval=0.5)
            assert_each_ran_once_at_a_time_and_kept_its_log(operator, ids, markers)
        database = fleet.home / "buildcoord.db"
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_sigterm_lets_requests_in_flight_finish_and_stores_nothing_unanswered(
    tmp_path: Path,
) -> None:
    with live_fleet(tmp_path / "home") as fleet:
        answered: list[int] = []
        refused: list[str] = []
        stop = threading.Event()

        def submit() -> None:
            with fleet.client() as client:
                while not stop.is_set():
                    try:
                        answered.append(client.submit_job("main", "abc1234").id)
                    except BuildcoordError as exc:
                        refused.append(str(exc))
                        return  # the coordinator is going or gone

        threads = [threading.Thread(target=submit) for _ in range(6)]
        for thread in threads:
            thread.start()
        wait_for("a stream of requests", lambda: len(answered) >= 50, timeout=60, interval=0.05)
        assert fleet.coordinator is not None
        fleet.coordinator.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then raises the signal again: death by SIGTERM
        # (which systemd counts as a clean stop).
        assert fleet.coordinator.wait(timeout=30) in (0, -signal.SIGTERM)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        database = fleet.home / "buildcoord.db"
        with sqlite3.connect(database) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            stored = [row[0] for row in conn.execute("SELECT id FROM jobs ORDER BY id")]
    assert sorted(answered) == stored, f"{len(refused)} refused: {refused[:3]}"
