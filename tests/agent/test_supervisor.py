"""The build supervisor as a real process: lease fencing, parent death, orphans, its report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from .conftest import alive, assert_gone, read_pids, wait_for

pytestmark = pytest.mark.timeout(60)

SUPERVISOR = [sys.executable, "-m", "buildcoord.agent.supervisor"]


def bash(command: str) -> list[str]:
    """The build part of a supervisor's command line."""
    return ["bash", "-c", command]


class Supervised:
    """A supervisor started by the test: its stdin for commands, its report pipe."""

    def __init__(self, lease: float, timeout: str, command: str) -> None:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            [
                *SUPERVISOR,
                "--report-fd",
                str(write),
                str(lease),
                timeout,
                "1",
                "--",
                *bash(command),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            pass_fds=(write,),
        )
        os.close(write)
        self.report: IO[bytes] = os.fdopen(read, "rb")
        self.started = time.monotonic()

    def send(self, line: str) -> None:
        """Write one command line on the supervisor's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())
        self.process.stdin.flush()

    def outcome(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the supervisor to exit and return its report."""
        self.process.wait(timeout)
        found: dict[str, Any] = json.loads(self.report.read().decode())
        return found

    def stop(self) -> None:
        """Kill the supervisor if a test left it running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.report.close()
        if self.process.stdin is not None:
            self.process.stdin.close()


@pytest.fixture
def supervise() -> Iterator[Any]:
    """Start supervisors: ``supervise(lease, timeout, command)``; all are stopped at the end."""
    started: list[Supervised] = []

    def start(lease: float, timeout: str, command: str) -> Supervised:
        supervised = Supervised(lease, timeout, command)
        started.append(supervised)
        return supervised

    yield start
    for supervised in started:
        supervised.stop()


def test_the_supervisor_reports_the_builds_exit_code(supervise: Any) -> None:
    assert supervise(60, "none", "exit 7").outcome() == {
        "exit_code": 7,
        "signal": None,
        "stopped_by": None,
    }


def test_a_build_whose_lease_is_not_renewed_is_killed_before_the_lease_runs_out(
    supervise: Any, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # Lease 4 s, fenced a quarter of it (1 s) early: the fence point is 3 s after the start.
    supervised = supervise(4, "none", f"sleep 300 & echo $$ $! > {pids}; sleep 300")

    outcome = supervised.outcome()

    took = time.monotonic() - supervised.started
    assert outcome["stopped_by"] == "lease"
    assert outcome["signal"] == signal.SIGKILL
    assert 2.9 <= took <= 4.5, took
    assert_gone(read_pids(pids), group=read_pids(pids)[0], timeout=0.5)


def test_lease_renewals_keep_the_build_running_past_its_first_fence_point(
    supervise: Any,
) -> None:
    supervised = supervise(4, "none", "sleep 2.5")
    end = time.monotonic() + 10
    while supervised.process.poll() is None and time.monotonic() < end:
        supervised.send("lease 4")
        time.sleep(0.2)

    assert supervised.outcome() == {"exit_code": 0, "signal": None, "stopped_by": None}


def test_kill_stops_the_build_at_once(supervise: Any, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    supervised = supervise(60, "none", f"trap '' TERM; echo $$ > {pids}; sleep 300")
    wait_for(pids.exists, what="the build to start")

    supervised.send("kill")

    assert supervised.outcome(timeout=3)["stopped_by"] == "lost-lease"
    assert not alive(read_pids(pids)[0])


def test_cancel_kills_a_build_that_ignores_sigterm_after_the_grace(
    supervise: Any, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    supervised = supervise(60, "none", f"trap '' TERM; echo $$ > {pids}; sleep 300")
    wait_for(pids.exists, what="the build to start")
    sent = time.monotonic()

    supervised.send("cancel")

    outcome = supervised.outcome()
    assert outcome["stopped_by"] == "cancel"
    assert outcome["signal"] == signal.SIGKILL
    assert 0.9 <= time.monotonic() - sent <= 3.0  # the grace is 1 s here


def test_a_daemonised_child_of_the_build_is_killed_when_the_build_ends(
    supervise: Any, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # setsid puts the sleep in a session of its own, out of the build's process group.
    command = f"setsid sleep 300 & echo $! > {pids}; sleep 0.3"

    assert supervise(60, "none", command).outcome()["exit_code"] == 0

    assert_gone(read_pids(pids), timeout=0.5)


def test_the_build_dies_when_the_supervisors_stdin_closes(supervise: Any, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    supervised = supervise(60, "none", f"echo $$ > {pids}; sleep 300")
    wait_for(pids.exists, what="the build to start")
    assert supervised.process.stdin is not None

    supervised.process.stdin.close()

    assert supervised.outcome(timeout=3)["stopped_by"] == "agent-died"
    assert not alive(read_pids(pids)[0])


# The supervisor inherits the parent's stdin, which the test holds open: only the
# parent-death signal can tell it that its parent is gone.
PARENT = """
import subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-m", "buildcoord.agent.supervisor", "60", "none", "1", "--",
     "bash", "-c", sys.argv[1]],
)
print(child.pid, flush=True)
child.wait()
"""


def test_the_build_dies_with_the_supervisors_parent(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = f"sleep 300 & echo $$ $! > {pids}; sleep 300"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        supervisor = int(parent.stdout.readline())
        wait_for(pids.exists, what="the build to start")
        build = read_pids(pids)

        parent.kill()
        parent.wait(5)

        assert_gone([supervisor, *build], group=build[0], timeout=3)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)
        assert parent.stdin is not None
        parent.stdin.close()
