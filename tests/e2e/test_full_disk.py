"""Full disks, for real (a small tmpfs; root only): an agent's work directory fills up and
its build fails with the reason while the agent goes on; the coordinator's SQLite directory
fills up and writes answer 503 with the reason, nothing is corrupted, and once there is room
again it works on by itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from buildcoord.errors import Unavailable
from faults import fill, small_tmpfs
from live_fleet import live_fleet, make_repository, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.timeout(180)]

# Writes 40 MB into the artifacts when the control file says "big", a line otherwise.
BUILD = """#!/usr/bin/env bash
set -eu
if [ "$(cat "$1/mode")" = big ]; then
    head -c 40000000 /dev/zero > "$BUILDCOORD_ARTIFACTS_DIR/big.bin"
fi
echo "built $BUILDCOORD_JOB_ID"
"""


def test_a_full_work_directory_fails_the_build_with_its_reason_and_the_agent_goes_on(
    tmp_path: Path,
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    (control / "mode").write_text("big")
    repo = tmp_path / "repo"
    make_repository(repo, {"build.sh": BUILD})
    home = tmp_path / "home"
    with (
        small_tmpfs(home / "agents" / "build1", "16m") as workdir,
        live_fleet(home, heartbeat_interval_seconds="1") as fleet,
        fleet.client() as operator,
    ):
        operator.add_branch("main", repo=str(repo), command=f"./build.sh {control}")
        fleet.register("build1")
        agent = fleet.start_agent("build1")
        first = operator.submit_job("main").id

        def ended(job_id: int) -> str | None:
            status = operator.get_job(job_id).status
            return status if status in ("succeeded", "failed", "cancelled") else None

        assert wait_for("the big build to end", lambda: ended(first), timeout=90) == "failed"
        log = "\n".join(entry.message for entry in operator.log_entries(first))
        assert "No space left on device" in log
        assert agent.poll() is None

        for big in workdir.rglob("big.bin"):  # an administrator makes room
            big.unlink()
        (control / "mode").write_text("small")
        second = operator.submit_job("main").id
        assert wait_for("the next build", lambda: ended(second), timeout=90) == "succeeded"
        assert agent.poll() is None
        assert operator.get_server("build1").status == "online"


def test_a_full_database_directory_answers_503_corrupts_nothing_and_recovers_by_itself(
    tmp_path: Path,
) -> None:
    with (
        small_tmpfs(tmp_path / "home", "32m") as home,
        live_fleet(home, heartbeat_interval_seconds="1") as fleet,
        fleet.client() as operator,
    ):
        answered = [operator.submit_job("main", "abc1234").id for _ in range(20)]
        filler = fill(home, leave_bytes=0)

        refusal: Unavailable | None = None
        for _ in range(5000):  # until the WAL or the database file needs a page it cannot get
            try:
                answered.append(operator.submit_job("main", "abc1234").id)
            except Unavailable as exc:
                refusal = exc
                break
        assert refusal is not None, "the database never ran out of room"
        assert "database or disk is full" in str(refusal)
        assert operator.get_job(answered[0]).id == answered[0]  # reads go on
        assert fleet.coordinator is not None
        assert fleet.coordinator.poll() is None

        filler.unlink()

        def write_again() -> int | None:
            try:
                return operator.submit_job("main", "abc1234").id
            except Unavailable:
                return None

        after = wait_for("a write to succeed again", write_again, timeout=30, interval=0.5)
        with sqlite3.connect(home / "buildcoord.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            stored = {row[0] for row in conn.execute("SELECT id FROM jobs")}
        assert {*answered, after} <= stored
