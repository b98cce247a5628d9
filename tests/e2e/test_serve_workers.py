"""`serve --workers N`: N coordinator processes on one socket and one database, stopped as one."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest

from buildcoord.models import Metrics
from live_fleet import live_fleet, pid_alive, wait_for

pytestmark = pytest.mark.timeout(120)


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def test_two_workers_share_the_queue_and_every_job_is_claimed_and_completed_once(
    tmp_path: Path,
) -> None:
    with live_fleet(tmp_path / "fleet", workers="2") as fleet:
        assert fleet.coordinator is not None
        workers = wait_for(
            "two worker processes",
            lambda: len(children_of(fleet.coordinator.pid)) == 2 or None,
            timeout=20,
        )
        assert workers
        with fleet.client() as operator:
            tokens = {name: operator.register_server(name)[1] for name in ("a1", "a2", "a3", "a4")}
            jobs = [operator.submit_job("bench", "a" * 40).id for _ in range(120)]
        done: Counter[int] = Counter()
        lock = threading.Lock()

        def agent(name: str) -> None:
            with fleet.client(tokens[name]) as client:
                while (job := client.claim_job(name)) is not None:
                    client.complete_job(
                        job.id, status="succeeded", server=name, fencing_token=job.fencing_token
                    )
                    with lock:
                        done[job.id] += 1

        threads = [threading.Thread(target=agent, args=(name,)) for name in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(done) == jobs
        assert set(done.values()) == {1}
        with fleet.client() as operator:
            assert {job.status for job in operator.list_jobs()} == {"succeeded"}


def test_stopping_the_first_process_stops_every_worker(tmp_path: Path) -> None:
    with live_fleet(tmp_path / "fleet", workers="3") as fleet:
        assert fleet.coordinator is not None
        parent = fleet.coordinator.pid
        wait_for("three workers", lambda: len(children_of(parent)) == 3 or None, timeout=20)
        workers = children_of(parent)
        os.kill(parent, signal.SIGTERM)
        fleet.coordinator.wait(timeout=30)
        wait_for(
            "the workers gone",
            lambda: not any(pid_alive(pid) for pid in workers) or None,
            timeout=20,
        )


def test_a_worker_that_dies_stops_the_others_and_the_first_process_exits_non_zero(
    tmp_path: Path,
) -> None:
    with live_fleet(tmp_path / "fleet", workers="2") as fleet:
        assert fleet.coordinator is not None
        parent = fleet.coordinator.pid
        wait_for("two workers", lambda: len(children_of(parent)) == 2 or None, timeout=20)
        first, second = children_of(parent)
        os.kill(first, signal.SIGKILL)
        assert fleet.coordinator.wait(timeout=30) == 1
        wait_for("the other worker gone", lambda: not pid_alive(second) or None, timeout=20)


def test_two_workers_stepping_the_monitor_open_one_alert_per_subject(tmp_path: Path) -> None:
    with live_fleet(
        tmp_path / "fleet", workers="2", monitor_seconds="1", heartbeat_interval_seconds="1"
    ) as fleet:
        fleet.register("build1")
        with fleet.client(fleet.tokens["build1"]) as agent:
            agent.heartbeat("build1", Metrics())
        with fleet.client() as client:

            def counted() -> int | None:
                found = client.list_alerts(rule="heartbeat_stale")
                return found[0].count if found and found[0].count >= 6 else None

            wait_for("the alert to be seen six times", counted, timeout=30, interval=0.25)
            alerts = client.list_alerts(include_resolved=True, rule="heartbeat_stale")
            opened = [
                event
                for event in client.list_events(subject="heartbeat_stale:build1", limit=1000)
                if event.kind == "alert.opened"
            ]

    assert len(alerts) == 1
    assert len(opened) == 1
