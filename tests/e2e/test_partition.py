"""An agent cut off from the network (its own namespace and veth pair, the link taken down,
so its packets meet silence, not a reset) past its lease, then joined again: the job ran
elsewhere, the cut-off build was stopped, and its late report is refused by fencing token."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildcoord.errors import Conflict
from faults import network_namespace
from live_fleet import live_fleet, make_repository, pid_alive, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.timeout(180)]

# The first build of a job runs long; a later one is short. Each records its pid and lease.
BUILD = """#!/usr/bin/env bash
set -u
markers="$1"
tag="$BUILDCOORD_SERVER-$BUILDCOORD_JOB_ID"
echo $$ > "$markers/$tag.pid"
echo "$BUILDCOORD_FENCING_TOKEN" > "$markers/$tag.fencing"
date +%s.%N > "$markers/$tag.start"
steps=3
if mkdir "$markers/first-$BUILDCOORD_JOB_ID" 2>/dev/null; then steps=150; fi
for i in $(seq 1 "$steps"); do
    echo "step $i on $BUILDCOORD_SERVER"
    date +%s.%N >> "$markers/$tag.ticks"
    sleep 0.2
done
"""


def test_an_agent_cut_off_past_its_lease_loses_its_job_and_its_late_report_is_refused(
    tmp_path: Path,
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    repo = tmp_path / "repo"
    make_repository(repo, {"build.sh": BUILD})
    with (
        network_namespace() as space,
        live_fleet(
            tmp_path / "home",
            host=space.host_ip,
            job_lease_seconds="9",
            heartbeat_interval_seconds="1",
        ) as fleet,
        fleet.client() as operator,
    ):
        operator.add_branch("main", repo=str(repo), command=f"./build.sh {markers}")
        token = fleet.register("build1")
        fleet.start_agent("build1", prefix=space.prefix)
        job_id = operator.submit_job("main").id
        pid_file = markers / f"build1-{job_id}.pid"
        wait_for("build1 to start the build", pid_file.exists, timeout=60)
        build_pid = int(wait_for("its pid", lambda: pid_file.read_text().strip(), timeout=5))
        old_fencing = int((markers / f"build1-{job_id}.fencing").read_text())
        fleet.register("build2")
        fleet.start_agent("build2")

        space.link("down")
        job = wait_for(
            "the job to finish elsewhere",
            lambda: (j := operator.get_job(job_id)).status == "succeeded" and j,
            timeout=90,
            interval=0.2,
        )
        assert (job.server, job.attempt) == ("build2", 2)
        wait_for("the cut-off build to be stopped", lambda: not pid_alive(build_pid), timeout=30)
        # Fenced before its lease ran out (3 s early): its last step was well before the job
        # started elsewhere (a step is 0.2 s), so the two builds never ran at once.
        last_step = float((markers / f"build1-{job_id}.ticks").read_text().split()[-1])
        restarted = float((markers / f"build2-{job_id}.start").read_text())
        assert last_step + 1.0 < restarted

        space.link("up")
        wait_for(
            "build1 to be back",
            lambda: operator.get_server("build1").status == "online",
            timeout=60,
            interval=0.2,
        )
        with fleet.client(token) as late, pytest.raises(Conflict):
            late.complete_job(
                job_id,
                status="succeeded",
                exit_code=0,
                duration=1.0,
                server="build1",
                fencing_token=old_fencing,
            )
        final = operator.get_job(job_id)
        assert (final.status, final.server, final.attempt) == ("succeeded", "build2", 2)
        lines = [entry.message for entry in operator.log_entries(job_id)]
        assert "step 3 on build2" in lines
        assert fleet.agents["build1"].poll() is None  # the agent goes on
