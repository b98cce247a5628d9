"""An agent given two coordinators of one PostgreSQL (``BUILDCOORD_URL=url1,url2``) rides
out the loss of the one it talks to: kill -9 of it mid-build, and the build goes on, reports
to the other, and the agent takes its next job there."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from live_fleet import live_fleet, make_repository, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

BUILD = """#!/usr/bin/env bash
set -eu
for i in $(seq 1 "$1"); do echo "step $i of $BUILDCOORD_JOB_ID"; sleep 0.2; done
"""


def test_killing_the_agents_coordinator_mid_build_hands_the_agent_to_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    repo = tmp_path / "repo"
    make_repository(repo, {"build.sh": BUILD})
    settings = {"heartbeat_interval_seconds": "1", "job_lease_seconds": "30"}
    with (
        live_fleet(tmp_path / "a", db=postgres_url, **settings) as first,
        live_fleet(tmp_path / "b", db=postgres_url, **settings) as second,
    ):
        with second.client() as operator:
            operator.add_branch("main", repo=str(repo), command="./build.sh 40")
        first.register("build1")
        first.start_agent("build1", url=f"{first.url},{second.url}")
        with second.client() as operator:
            job_id = operator.submit_job("main").id

            def running() -> bool:
                lines = [e.message for e in operator.log_entries(job_id)]
                return any("step 5 of" in line for line in lines)

            wait_for("the build to be under way", running, timeout=60)
            assert first.coordinator is not None
            os.kill(first.coordinator.pid, signal.SIGKILL)
            first.coordinator.wait(timeout=10)

            def finished() -> str | None:
                status = operator.get_job(job_id).status
                return status if status in ("succeeded", "failed", "cancelled") else None

            assert wait_for("the job to finish", finished, timeout=60) == "succeeded"
            job = operator.get_job(job_id)
            lines = [entry.message for entry in operator.log_entries(job_id)]
            assert (job.attempt, job.server) == (1, "build1")
            steps = [line for line in lines if line.startswith("step ")]
            assert steps == [f"step {i} of {job_id}" for i in range(1, 41)]

            # The agent's session is now at the second coordinator: new work reaches it.
            next_id = operator.submit_job("main").id
            wait_for(
                "the next job to finish on build1",
                lambda: operator.get_job(next_id).status == "succeeded",
                timeout=60,
            )
            assert operator.get_server("build1").status == "online"
        assert "Traceback" not in first.agent_log("build1")
