"""One build as a process: the supervisor running ``bash -c <command>``, its output and outcome.

The supervisor (``buildcoord.agent.supervisor``) is started from the thread that then waits
on it: PR_SET_PDEATHSIG fires when the *thread* that spawned a process exits, so spawning
it from a short-lived thread would kill every build at once. Its stdout (the build's output,
stderr merged) is read line by line and handed to ``on_line``; its stdin takes the
supervisor's commands (``lease <seconds>``, ``cancel``, ``kill``) and stays open while the
build runs, since end of file tells the supervisor that the agent is gone. Its outcome comes
as JSON on a pipe of its own (``--report-fd``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Longer lines are cut into pieces: a minified file printed whole must not make one
# multi-megabyte log entry (the coordinator keeps 20,000 characters of a message anyway).
LINE_LIMIT = 16_000
# How long to keep reading output after the supervisor exited. It kills every descendant
# before it exits, so the pipe closes at once unless something escaped it.
DRAIN_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a build ended."""

    exit_code: int | None
    signal: int | None
    stopped_by: str | None
    duration: float
    error: str | None = None  # the supervisor could not start or died without a report


def build_environment(
    base: Mapping[str, str],
    *,
    job_id: int,
    branch: str,
    commit: str,
    artifacts_dir: Path,
    commit_time: int,
    server: str,
    fencing_token: int,
    url: str,
    token: str | None,
) -> dict[str, str]:
    """The build's environment: the agent's own, with the job's facts as BUILDCOORD_* variables.

    Inherited BUILDCOORD_* variables are dropped first: an admin token or a database URL in
    the agent's environment has no business in a build, and a stale BUILDCOORD_JOB_ID
    (an agent started from inside a build) would send log lines to the wrong job.
    ``token`` is the build token the coordinator issued for this job's lease (it can only
    append to this job's log), never the agent's own; None leaves BUILDCOORD_TOKEN unset.
    """
    env = {key: value for key, value in base.items() if not key.startswith("BUILDCOORD_")}
    env.update(
        {
            "BUILDCOORD_JOB_ID": str(job_id),
            "BUILDCOORD_BRANCH": branch,
            "BUILDCOORD_COMMIT": commit,
            "BUILDCOORD_ARTIFACTS_DIR": str(artifacts_dir),
            "SOURCE_DATE_EPOCH": str(commit_time),
            "BUILDCOORD_SERVER": server,
            "BUILDCOORD_FENCING_TOKEN": str(fencing_token),
            "BUILDCOORD_URL": url,
        }
    )
    if token:
        env["BUILDCOORD_TOKEN"] = token
    return env


class Build:
    """A supervised ``bash -c COMMAND`` in cwd; start it, talk to it, wait for its outcome."""

    def __init__(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        lease_seconds: float,
        timeout: float | None,
        grace: float,
        on_line: Callable[[str], None],
        python: str = sys.executable,
    ) -> None:
        self.command = command
        self.cwd = cwd
        self.env = dict(env)
        self.lease_seconds = lease_seconds
        self.timeout = timeout
        self.grace = grace
        self.on_line = on_line
        self.python = python
        self.pid: int | None = None
        self._lock = threading.Lock()
        self._stdin: IO[bytes] | None = None
        self._unsent: list[str] = []
        self._closed = False
        self._done = threading.Event()
        self._outcome: Outcome | None = None
        self._thread = threading.Thread(target=self._run, name="buildcoord-build", daemon=True)

    def argv(self, report_fd: int) -> list[str]:
        """The supervisor's command line (the command is one argv element, never re-parsed)."""
        return [
            self.python,
            "-m",
            "buildcoord.agent.supervisor",
            "--report-fd",
            str(report_fd),
            f"{max(0.0, self.lease_seconds):.3f}",
            "none" if self.timeout is None else f"{self.timeout:.3f}",
            f"{self.grace:.3f}",
            "--",
            "bash",
            "-c",
            "--",
            self.command,
        ]

    def start(self) -> None:
        """Start the build in its own thread."""
        self._thread.start()

    def send(self, line: str) -> None:
        """Send a command to the supervisor (queued until it has started; dropped after)."""
        with self._lock:
            if self._closed:
                return
            if self._stdin is None:
                self._unsent.append(line)
                return
            self._write(line)

    def wait(self, timeout: float | None = None) -> Outcome | None:
        """The outcome, or None if the build is still running after timeout seconds."""
        if not self._done.wait(timeout):
            return None
        return self._outcome

    # -- the waiting thread --------------------------------------------------------------------

    def _write(self, line: str) -> None:
        stdin = self._stdin
        assert stdin is not None
        # The supervisor may be gone already (OSError): its outcome tells the rest.
        with contextlib.suppress(OSError):
            os.write(stdin.fileno(), (line + "\n").encode())

    def _run(self) -> None:
        started = time.monotonic()
        try:
            self._outcome = self._supervise(started)
        except Exception as exc:  # never leave wait() hanging on a bug here
            self._outcome = Outcome(None, None, None, time.monotonic() - started, error=str(exc))
        finally:
            self._done.set()

    def _supervise(self, started: float) -> Outcome:
        report_read, report_write = os.pipe()
        try:
            process = subprocess.Popen(
                self.argv(report_write),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(report_write,),
                # Its own session: a Ctrl-C meant for the agent's terminal must not reach
                # the build directly; the agent decides what a stop means.
                start_new_session=True,
            )
        except OSError as exc:
            os.close(report_read)
            return Outcome(None, None, None, time.monotonic() - started, error=str(exc))
        finally:
            os.close(report_write)
        self.pid = process.pid
        with self._lock:
            self._stdin = process.stdin
            for line in self._unsent:
                self._write(line)
            self._unsent.clear()
        assert process.stdout is not None
        self._read_output(process, process.stdout.fileno())
        process.wait()
        with self._lock:
            self._closed = True
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        process.stdout.close()
        with os.fdopen(report_read, "rb") as report:
            lines = report.read().decode(errors="replace").splitlines()
        duration = time.monotonic() - started
        try:
            found = json.loads(lines[-1])
        except (IndexError, ValueError):
            return Outcome(
                None,
                None,
                None,
                duration,
                error=f"the build supervisor exited ({process.returncode}) without a report",
            )
        return Outcome(
            exit_code=found.get("exit_code"),
            signal=found.get("signal"),
            stopped_by=found.get("stopped_by"),
            duration=duration,
        )

    def _read_output(self, process: subprocess.Popen[bytes], fd: int) -> None:
        pending = b""
        exited_at: float | None = None
        while True:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._emit(line)
                while len(pending) > LINE_LIMIT:
                    self._emit(pending[:LINE_LIMIT])
                    pending = pending[LINE_LIMIT:]
            elif process.poll() is not None:
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > DRAIN_SECONDS:
                    break
        if pending:
            self._emit(pending)

    def _emit(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip("\r")
        for start in range(0, max(len(text), 1), LINE_LIMIT):
            self.on_line(text[start : start + LINE_LIMIT])
