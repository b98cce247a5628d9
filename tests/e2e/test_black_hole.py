"""A black hole found and quarantined with real processes: a coordinator whose monitor steps
every second, and two agents building a real repository whose build fails on build1 only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from buildcoord.models import Job
from live_fleet import LiveFleet, live_fleet, make_repository, stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

# Fails on build1 (its disk, say), passes everywhere else.
BUILD = """#!/usr/bin/env bash
set -eu
if [ "$BUILDCOORD_SERVER" = build1 ]; then echo "no space left on device" >&2; exit 1; fi
echo ok > "$BUILDCOORD_ARTIFACTS_DIR/result.txt"
"""


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[LiveFleet]:
    with live_fleet(
        tmp_path / "home", monitor_seconds="1", quarantine_black_holes="true"
    ) as running:
        repo = tmp_path / "repo"
        make_repository(repo, {"build.sh": BUILD})
        with running.client() as client:
            client.add_branch("main", repo=str(repo), command="./build.sh")
        for name in ("build1", "build2"):
            running.register(name)
        yield running


def build(fleet: LiveFleet) -> Job:
    """Queue a build of main and wait for it to finish; return it."""
    with fleet.client() as client:
        job_id = client.submit_job("main").id

    def done() -> Job | None:
        with fleet.client() as client:
            job = client.get_job(job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return wait_for(f"job {job_id} to finish", done, timeout=60, interval=0.2)


def test_a_server_failing_what_passes_elsewhere_is_quarantined_and_gets_no_more_work(
    fleet: LiveFleet,
) -> None:
    fleet.start_agent("build2")
    passed = build(fleet)
    assert (passed.status, passed.server) == ("succeeded", "build2")
    stop_process(fleet.agents["build2"])
    fleet.start_agent("build1")
    failed = [build(fleet) for _ in range(3)]
    assert {(job.status, job.server) for job in failed} == {("failed", "build1")}

    def quarantined() -> bool:
        with fleet.client() as client:
            return client.get_server("build1").quarantined_at is not None

    wait_for("the monitor to quarantine build1", quarantined, timeout=30, interval=0.2)
    with fleet.client() as client:
        [alert] = client.list_alerts(rule="black_hole")
        server = client.get_server("build1")
    assert alert.subject == "build1"
    assert alert.details["failed_jobs"] == [job.id for job in failed]
    assert (server.quarantine_reason or "").startswith(f"alert {alert.id}: build1 failed")

    # Quarantined, build1 claims nothing: the next build waits for build2.
    fleet.start_agent("build2")
    after = build(fleet)
    assert (after.status, after.server) == ("succeeded", "build2")
