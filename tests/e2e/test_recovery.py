"""Lost work is recovered and never run twice at once: real coordinator, real agents, real builds.

Each test runs a coordinator and two agents as processes on loopback, building a real git
repository whose build writes its pids into a markers folder, so that the test can check,
by pid, that a dead or frozen agent's build is gone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildcoord.models import Job
from live_fleet import LiveFleet, live_fleet, make_repository, pid_alive, wait_for

pytestmark = pytest.mark.slow

# The first build of a job runs long (so a test can kill or freeze its agent); every later
# build of it is short. Each build records its own pid and its background child's.
BUILD = """#!/usr/bin/env bash
set -u
markers="$1"
tag="$BUILDCOORD_SERVER-$BUILDCOORD_JOB_ID"
echo $$ > "$markers/$tag.pid"
sleep 600 &
echo $! > "$markers/$tag.child"
steps=3
if mkdir "$markers/first-$BUILDCOORD_JOB_ID" 2>/dev/null; then steps=150; fi
for i in $(seq 1 "$steps"); do echo "step $i on $BUILDCOORD_SERVER"; sleep 0.2; done
kill %1
echo done > "$BUILDCOORD_ARTIFACTS_DIR/result.txt"
"""


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    """Where builds write their pids."""
    path = tmp_path / "markers"
    path.mkdir()
    return path


def start(fleet: LiveFleet, tmp_path: Path, markers: Path, *names: str) -> None:
    """Set up the branch and start agents."""
    repo = tmp_path / "repo"
    make_repository(repo, {"build.sh": BUILD})
    with fleet.client() as client:
        client.add_branch("main", repo=str(repo), command=f"./build.sh {markers}")
    for name in names:
        fleet.register(name)
        fleet.start_agent(name)


def first_build(markers: Path, job_id: int) -> tuple[str, int, int]:
    """Wait for the job's first build to start; return (server, build pid, child pid)."""

    def found() -> tuple[str, int, int] | None:
        for pid_file in markers.glob(f"*-{job_id}.pid"):
            child_file = pid_file.with_suffix(".child")
            if child_file.exists() and child_file.read_text().strip():
                server = pid_file.name.rsplit("-", 1)[0]
                return server, int(pid_file.read_text()), int(child_file.read_text())
        return None

    return wait_for("the first build to start", found, timeout=60)


def job_of(fleet: LiveFleet, job_id: int) -> Job:
    """The job as the coordinator sees it now."""
    with fleet.client() as client:
        return client.get_job(job_id)


def finished(fleet: LiveFleet, job_id: int, timeout: float) -> Job:
    """Wait for the job to finish; return it."""
    return wait_for(
        f"job {job_id} to finish",
        lambda: (
            (job := job_of(fleet, job_id)).status in ("succeeded", "failed", "cancelled") and job
        ),
        timeout=timeout,
        interval=0.2,
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[LiveFleet]:
    """A coordinator with a short lease so the slow path stays quick to test."""
    with live_fleet(tmp_path / "home", job_lease_seconds="9") as running:
        yield running


def test_killing_an_agent_kills_its_build_and_the_job_finishes_on_the_other_agent(
    fleet: LiveFleet, tmp_path: Path, markers: Path
) -> None:
    start(fleet, tmp_path, markers, "build1", "build2")
    with fleet.client() as client:
        job_id = client.submit_job("main").id
    server, build_pid, child_pid = first_build(markers, job_id)
    other = "build2" if server == "build1" else "build1"

    os.kill(fleet.agents[server].pid, signal.SIGKILL)

    wait_for("the dead agent's build to die", lambda: not pid_alive(build_pid), timeout=10)
    wait_for("the build's child to die", lambda: not pid_alive(child_pid), timeout=10)
    job = finished(fleet, job_id, timeout=60)
    assert (job.status, job.server, job.attempt) == ("succeeded", other, 2)


def test_a_frozen_agent_loses_its_job_and_its_build_never_overlaps_the_new_one(
    fleet: LiveFleet, tmp_path: Path, markers: Path
) -> None:
    start(fleet, tmp_path, markers, "build1", "build2")
    with fleet.client() as client:
        job_id = client.submit_job("main").id
    server, build_pid, child_pid = first_build(markers, job_id)
    other = "build2" if server == "build1" else "build1"
    frozen = fleet.agents[server]

    os.killpg(frozen.pid, signal.SIGSTOP)
    try:
        # The build must be dead before anyone else starts the job: self-fencing.
        second = wait_for(
            "the job to start elsewhere",
            lambda: next(iter(markers.glob(f"{other}-{job_id}.pid")), None),
            timeout=60,
        )
        assert not pid_alive(build_pid), "the frozen agent's build still ran beside the new one"
        assert not pid_alive(child_pid)
        assert second.exists()
    finally:
        os.killpg(frozen.pid, signal.SIGCONT)

    job = finished(fleet, job_id, timeout=60)
    assert (job.status, job.server) == ("succeeded", other)
    # The woken agent's late report was refused and it keeps serving.
    time.sleep(2)
    assert frozen.poll() is None
    with fleet.client() as client:
        kinds = [event.kind for event in client.list_events(subject=f"job:{job_id}")]
    assert kinds.count("job.succeeded") == 1


@pytest.fixture
def default_fleet(tmp_path: Path) -> Iterator[LiveFleet]:
    """A coordinator with the default lease (30 s)."""
    with live_fleet(tmp_path / "home") as running:
        yield running


def test_a_coordinator_restart_mid_build_loses_nothing(
    default_fleet: LiveFleet, tmp_path: Path, markers: Path
) -> None:
    fleet = default_fleet
    start(fleet, tmp_path, markers, "build1")
    with fleet.client() as client:
        job_id = client.submit_job("main").id
    first_build(markers, job_id)

    fleet.stop_coordinator()
    time.sleep(2)
    fleet.start_coordinator()

    job = finished(fleet, job_id, timeout=90)
    assert (job.status, job.attempt, job.server) == ("succeeded", 1, "build1")
    with fleet.client() as client:
        lines = [entry.message for entry in client.log_entries(job_id)]
    assert any("step 1 on build1" in line for line in lines)
    assert any("step 150 on build1" in line for line in lines)


def test_sigterm_drains_the_agent_after_its_current_build(
    default_fleet: LiveFleet, tmp_path: Path, markers: Path
) -> None:
    fleet = default_fleet
    start(fleet, tmp_path, markers, "build1")
    with fleet.client() as client:
        job_id = client.submit_job("main").id
        waiting_id = client.submit_job("main").id
    _server, build_pid, _child = first_build(markers, job_id)
    agent = fleet.agents["build1"]

    agent.send_signal(signal.SIGTERM)

    assert agent.wait(timeout=90) == 0
    assert not pid_alive(build_pid)
    assert job_of(fleet, job_id).status == "succeeded"
    assert job_of(fleet, waiting_id).status == "queued"  # drained: nothing new was claimed


def test_a_second_sigterm_stops_the_current_build_and_reports_it(
    default_fleet: LiveFleet, tmp_path: Path, markers: Path
) -> None:
    fleet = default_fleet
    start(fleet, tmp_path, markers, "build1")
    with fleet.client() as client:
        job_id = client.submit_job("main").id
    _server, build_pid, child_pid = first_build(markers, job_id)
    agent = fleet.agents["build1"]

    agent.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    agent.send_signal(signal.SIGTERM)

    assert agent.wait(timeout=60) == 0
    wait_for("the build to die", lambda: not pid_alive(build_pid), timeout=15)
    assert not pid_alive(child_pid)
    assert job_of(fleet, job_id).status == "failed"
