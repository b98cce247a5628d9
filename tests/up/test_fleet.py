"""Supervising the children of buildcoord up: restarts with backoff, ordered stop, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from buildcoord.up.fleet import Child, ChildSpec, stop, tail


class Ticks:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def child(
    tmp_path: Path, script: str, *, restart: bool = False, clock: Ticks | None = None
) -> Child:
    """A Child running ``sh -c script`` with its output in tmp_path."""
    spec = ChildSpec(
        "worker",
        ["sh", "-c", script],
        dict(os.environ),
        tmp_path / "logs" / "worker.log",
        restart=restart,
    )
    return Child(spec, clock=clock or Ticks())


def wait_for_exit(worker: Child, timeout: float = 10.0) -> None:
    """Wait until the worker's process has ended."""
    deadline = time.monotonic() + timeout
    while worker.running:
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_child_that_dies_is_restarted_after_a_backoff(tmp_path: Path) -> None:
    clock = Ticks()
    worker = child(tmp_path, "exit 3", restart=True, clock=clock)
    worker.start()
    wait_for_exit(worker)
    event = worker.step()
    assert event is not None
    assert event.text == "worker exited with code 3; restarting in 1 s"
    assert worker.step() is None
    clock.now += 1
    event = worker.step()
    assert event is not None
    assert event.kind == "restarted"
    assert worker.restarts == 1


def test_the_backoff_doubles_while_a_child_keeps_dying_young(tmp_path: Path) -> None:
    clock = Ticks()
    worker = child(tmp_path, "exit 1", restart=True, clock=clock)
    worker.start()
    delays = []
    for _ in range(3):
        wait_for_exit(worker)
        event = worker.step()
        assert event is not None
        delays.append(event.text.rsplit("in ", 1)[1])
        clock.now += float(delays[-1].split()[0])
        assert worker.step() is not None  # restarted
    assert delays == ["1 s", "2 s", "4 s"]


def test_a_child_that_ran_long_before_dying_starts_its_backoff_again(tmp_path: Path) -> None:
    clock = Ticks()
    worker = child(tmp_path, "exit 1", restart=True, clock=clock)
    worker.failures = 4
    worker.start()
    clock.now += 600
    wait_for_exit(worker)
    event = worker.step()
    assert event is not None
    assert event.text.endswith("restarting in 1 s")


def test_a_child_without_restart_is_reported_once_and_left_alone(tmp_path: Path) -> None:
    worker = child(tmp_path, "kill -KILL $$")
    worker.start()
    wait_for_exit(worker)
    event = worker.step()
    assert event is not None
    assert event.text == "worker was killed by signal 9"
    assert worker.step() is None
    assert worker.last_exit == -signal.SIGKILL


def test_a_child_writes_its_output_to_its_log_file(tmp_path: Path) -> None:
    worker = child(tmp_path, "echo hello; echo oops >&2")
    worker.start()
    wait_for_exit(worker)
    assert tail(worker.spec.log_path).splitlines()[-2:] == ["hello", "oops"]


def test_a_child_runs_in_its_own_process_group(tmp_path: Path) -> None:
    worker = child(tmp_path, "sleep 30")
    worker.start()
    try:
        assert worker.pid is not None
        assert os.getpgid(worker.pid) == worker.pid != os.getpgid(0)
    finally:
        stop([worker], timeout=5, hurry=lambda: False)


def test_stop_ends_a_child_with_sigterm_when_it_obeys(tmp_path: Path) -> None:
    worker = child(tmp_path, "sleep 30")
    worker.start()
    assert stop([worker], timeout=5, hurry=lambda: False) == []
    assert worker.last_exit == -signal.SIGTERM


def test_stop_kills_a_child_that_ignores_sigterm_after_the_timeout(tmp_path: Path) -> None:
    worker = child(tmp_path, "trap '' TERM; echo ready; while :; do sleep 0.1; done")
    worker.start()
    while "ready" not in tail(worker.spec.log_path):
        time.sleep(0.02)
    started = time.monotonic()
    assert stop([worker], timeout=0.5, hurry=lambda: False) == ["worker"]
    assert 0.5 <= time.monotonic() - started < 5
    assert worker.last_exit == -signal.SIGKILL


def test_a_stopped_child_is_not_restarted(tmp_path: Path) -> None:
    clock = Ticks()
    worker = child(tmp_path, "sleep 30", restart=True, clock=clock)
    worker.start()
    stop([worker], timeout=5, hurry=lambda: False)
    clock.now += 100
    assert worker.step() is None
    assert not worker.running


def test_a_child_dies_with_its_parent_even_on_kill_9(tmp_path: Path) -> None:
    program = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from buildcoord.up.fleet import Child, ChildSpec\n"
        "spec = ChildSpec('sleeper', ['sleep', '60'], dict(os.environ), Path(sys.argv[1]))\n"
        "child = Child(spec)\n"
        "child.start()\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", program, str(tmp_path / "sleeper.log")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        grandchild = int(parent.stdout.readline())
        assert alive(grandchild)
    finally:
        parent.kill()
        parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while alive(grandchild):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
