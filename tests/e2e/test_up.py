"""buildcoord up --demo as a real process: two agents build one commit to identical bytes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import httpx
import pytest

from buildcoord.client import Client
from buildcoord.errors import BuildcoordError
from buildcoord.models import Job

T = TypeVar("T")
DEMO_TIMEOUT_SECONDS = 90.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], T | None], timeout: float, up: UpProcess) -> T:
    """Poll check until it returns a value; fail naming what, with up's output, on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(BuildcoordError, OSError):
            value = check()
            if value is not None:
                return value
        if up.process.poll() is not None:
            pytest.fail(f"buildcoord up exited ({up.process.returncode}):\n{up.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:g} s; buildcoord up said:\n{up.output()}")
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    """The direct children of pid, from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@dataclass
class UpProcess:
    """A running ``buildcoord up`` and where it writes."""

    process: subprocess.Popen[bytes]
    home: Path
    url: str
    log: Path
    fleet: list[int] = field(default_factory=list)

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text(errors="replace")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[UpProcess]:
    """``buildcoord up --demo`` on a free port, without a TTY; killed by pid if a test fails."""
    home = tmp_path / "home"
    log = tmp_path / "up.out"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("BUILDCOORD_")}
    argv = [sys.executable, "-m", "buildcoord", "up", "--demo", "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*argv, "--home", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            process_group=0,
        )
    running = UpProcess(process, home, f"http://127.0.0.1:{port}", log)
    try:
        yield running
    finally:
        if process.poll() is None:
            running.fleet += children(process.pid)
            process.kill()
            process.wait(timeout=30)
        for pid in running.fleet:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def both_builds_of_main(client: Client) -> dict[str, Job] | None:
    """The succeeded builds of main by server, once build1 and build2 both have one."""
    jobs = client.list_jobs(branch="main")
    failed = [job for job in jobs if job.status in ("failed", "cancelled")]
    if failed:
        log = "\n".join(entry.message for entry in client.log_entries(failed[0].id))
        pytest.fail(f"a build of main {failed[0].status}: {failed[0].reason}\n{log}")
    done = {job.server: job for job in jobs if job.status == "succeeded" and job.server}
    return done if {"build1", "build2"} <= done.keys() else None


@pytest.mark.slow
def test_up_demo_builds_one_commit_on_both_servers_to_identical_artifacts_and_stops_cleanly(
    up: UpProcess,
) -> None:
    token_file = up.home / "admin-token"
    token = wait_for("admin token", lambda: token_file.read_text().strip() or None, 30, up)
    client = Client(up.url, token, timeout=10)
    started = time.monotonic()
    builds = wait_for("two builds of main", lambda: both_builds_of_main(client), 90, up)
    print(f"both builds of main succeeded {time.monotonic() - started:.1f} s after start")

    dashboard = f"{up.url}/login#token={quote(token, safe='')}"
    assert dashboard in up.output(), "up printed no dashboard URL that logs in"
    assert "<form" in httpx.get(f"{up.url}/login", timeout=10).text

    build1, build2 = builds["build1"], builds["build2"]
    tip = subprocess.run(
        ["git", "rev-parse", "main"],
        cwd=up.home / "demo" / "repo",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert build1.commit == build2.commit == tip

    tarballs = [
        {
            item.path: item.sha256
            for item in client.manifest(job.id)
            if item.path.endswith(".tar.gz")
        }
        for job in (build1, build2)
    ]
    assert tarballs[0], "build1 made no .tar.gz"
    assert tarballs[0] == tarballs[1]

    for job in (build1, build2):
        entries = client.log_entries(job.id)
        output = [entry.message for entry in entries if entry.kind == "output"]
        assert "==> testing" in output
        events = [entry.message for entry in entries if entry.kind == "event"]
        assert "greet 1.0.0 packaged" in events  # written by build.sh with `buildcoord log event`

    [sha256] = tarballs[0].values()
    verdict = f"build1 and build2 produced identical artifacts (sha256 {sha256}"
    wait_for("verdict line", lambda: verdict in up.output() or None, 15, up)

    up.fleet = children(up.process.pid)
    assert len(up.fleet) >= 3, "expected the coordinator and two agents"
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(timeout=20) == 0, up.output()
    assert [pid for pid in up.fleet if alive(pid)] == []
    assert up.output().rstrip().endswith("Stopped.")
