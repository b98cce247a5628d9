"""One claimed job, start to finish: workspace, build, lease, log, manifest, report.

What the agent reports depends on why the build ended:

* it ran to its end (any exit code), timed out, or could not start (bad repository, commit,
  branch): the job is completed as succeeded or failed, with the reason in its log;
* the coordinator cancelled it, or the lease was lost (renewal refused, or the supervisor
  fenced the build because it could not be renewed in time): nothing is reported. The job
  is no longer ours; a lease that ran out is requeued by the coordinator (attempt + 1),
  as an infrastructure failure should be.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buildcoord.agent.backoff import call_with_retry
from buildcoord.agent.build import Build, Outcome, build_environment
from buildcoord.agent.joblog import JobLog
from buildcoord.agent.lease import LeaseKeeper
from buildcoord.agent.options import AgentOptions
from buildcoord.agent.workspace import Workspace, WorkspaceError
from buildcoord.artifacts.manifest import build_manifest
from buildcoord.client import Client
from buildcoord.errors import BuildcoordError, Unavailable
from buildcoord.git import GitError
from buildcoord.models import MAX_DURATION_SECONDS, ArtifactFile, Assignment

log = logging.getLogger("buildcoord.agent")

# Stops that mean the job is no longer ours: report nothing.
NOT_OURS = frozenset({"lease", "lost-lease", "agent-died"})


@dataclass(frozen=True, slots=True)
class Result:
    """What to tell the coordinator.

    ``status`` is succeeded or failed; with ``report`` False (nothing is told, the job is
    not ours) it is cancelled or lost, for the agent's own log.
    """

    status: str
    exit_code: int | None = None
    reason: str | None = None
    manifest: list[ArtifactFile] | None = None
    report: bool = True


class JobRun:
    """Runs one assignment; ``cancel`` and ``abort`` may be called from other threads."""

    def __init__(
        self,
        client: Client,
        options: AgentOptions,
        workspace: Workspace,
        assignment: Assignment,
        *,
        granted_at: float,
        url: str,
        stop_requests: Callable[[], int],
    ) -> None:
        self.client = client
        self.options = options
        self.workspace = workspace
        self.assignment = assignment
        self.job = assignment.job
        self.granted_at = granted_at
        self.url = url
        self.stop_requests = stop_requests
        self.cancelled: str | None = None
        self.stops_seen = 0
        self.last_line = ""
        self._lock = threading.Lock()
        self._build: Build | None = None
        self._lost: str | None = None
        self.log = JobLog(
            client, self.job.id, server=options.name, fencing_token=self.job.fencing_token
        )
        self.lease = LeaseKeeper(
            client,
            self.job,
            server=options.name,
            lease_seconds=self._lease_seconds(),
            granted_at=granted_at,
            on_lost=self._on_lease_lost,
        )

    def _lease_seconds(self) -> float:
        """Plan with the shorter of the agent's lease and the one the coordinator granted."""
        job = self.job
        if job.lease_expires_at is not None and job.started_at is not None:
            granted = (job.lease_expires_at - job.started_at).total_seconds()
            if granted > 0:
                return min(self.options.lease_seconds, granted)
        return self.options.lease_seconds

    # -- called from other threads -------------------------------------------------------------

    def cancel(self, reason: str | None) -> None:
        """The coordinator cancelled the job: stop the build (SIGTERM, grace, SIGKILL)."""
        self._stop_build(lambda: setattr(self, "cancelled", reason or "cancelled"), "cancel")

    def _on_lease_lost(self, why: str, cancelled: bool) -> None:
        if cancelled:
            self.cancel(why)
        else:
            self._stop_build(lambda: setattr(self, "_lost", why), "kill")

    def _stop_build(self, mark: Callable[[], None], command: str) -> None:
        with self._lock:
            mark()
            build = self._build
        if build is not None:
            build.send(command)

    # -- the run -------------------------------------------------------------------------------

    def execute(self) -> Result:
        """Run the job and report it; return what was (or would have been) reported."""
        job, assignment = self.job, self.assignment
        self.lease.start()
        self.log.start()
        log.info("job %d: building %s at %s", job.id, job.branch, job.commit[:12])
        self.log.event(
            "info",
            f"{self.options.name} took job {job.id} (attempt {job.attempt} of "
            f"{job.max_attempts}): {job.branch} at {job.commit}",
            {"server": self.options.name, "repo": assignment.repo, "attempt": job.attempt},
        )
        try:
            result = self._run()
            if result.report:
                self._report(result)
            else:
                # Stop renewing first: a lease that is not ours to keep must run out.
                self.lease.stop()
                self.log.close(patience=5.0)
                log.warning(
                    "job %d: %s (%s): build stopped, nothing reported",
                    job.id,
                    result.status,
                    result.reason,
                )
        finally:
            self.lease.stop()
        return result

    def _run(self) -> Result:
        job, assignment = self.job, self.assignment
        try:
            checkout = self.workspace.prepare(assignment.repo, job.branch, job.commit)
            artifacts = self.workspace.artifacts_dir(job.branch, job.id)
        except (WorkspaceError, GitError, OSError) as exc:
            return Result("failed", reason=str(exc))
        for warning in checkout.warnings:
            self.log.event("warning", warning)
        self.log.event(
            "info",
            f"running the build command of {job.branch} in {checkout.path}",
            {
                "command": assignment.command,
                "timeout_seconds": assignment.timeout_seconds,
                "artifacts_dir": str(artifacts),
            },
        )
        env = build_environment(
            os.environ,
            job_id=job.id,
            branch=job.branch,
            commit=checkout.commit,
            artifacts_dir=artifacts,
            commit_time=checkout.commit_time,
            server=self.options.name,
            fencing_token=job.fencing_token,
            url=self.url,
            token=self._build_token(),
        )
        build = Build(
            assignment.command,
            cwd=checkout.path,
            env=env,
            lease_seconds=self.lease.remaining(),
            timeout=assignment.timeout_seconds,
            grace=self.options.cancel_grace,
            on_line=self._on_line,
            python=self.options.python,
        )
        with self._lock:
            gone = self.cancelled is not None or self._lost is not None
            if not gone:
                self._build = build
        if gone:  # cancelled or lost while the workspace was being prepared
            stopped = self._not_ours(None, None)
            assert stopped is not None
            return stopped
        build.start()
        self.lease.attach(build)
        outcome = self._wait(build)
        manifest, problem = self._manifest(artifacts)
        if problem:
            self.log.event("warning", problem)
        return self._judge(outcome, manifest)

    def _build_token(self) -> str | None:
        """The build's own token (its job's log, this lease); None rather than the agent's.

        The build runs code from the commit: the agent's token would let it act as this
        server (claim, relabel, read everything).
        """
        try:
            return self.client.build_token(
                self.job.id, server=self.options.name, fencing_token=self.job.fencing_token
            )
        except BuildcoordError as exc:
            self.log.event("warning", f"the build runs without a token: {exc}")
            return None

    def _on_line(self, line: str) -> None:
        if line.strip():
            self.last_line = line.strip()
        self.log.output(line)

    def _wait(self, build: Build) -> Outcome:
        while True:
            outcome = build.wait(0.2)
            if outcome is not None:
                return outcome
            requests = self.stop_requests()
            if requests == self.stops_seen:
                continue
            self.stops_seen = requests
            if requests == 1:
                log.info(
                    "job %d: draining: exiting after this job (stop again to cancel it)",
                    self.job.id,
                )
            else:
                log.warning("job %d: the agent is stopping: cancelling the build", self.job.id)
                build.send("cancel")

    def _manifest(self, artifacts: Path) -> tuple[list[ArtifactFile] | None, str]:
        try:
            files = build_manifest(artifacts)
        except (BuildcoordError, OSError) as exc:
            return None, f"no artifact manifest: {exc}"
        total = sum(item.size for item in files)
        self.log.event("info", f"artifact manifest: {len(files)} files, {total} bytes")
        return files, ""

    def _not_ours(
        self, outcome: Outcome | None, manifest: list[ArtifactFile] | None
    ) -> Result | None:
        """The result when the job is no longer ours (cancelled, lease lost), else None."""
        code = None if outcome is None else outcome.exit_code
        with self._lock:
            cancelled, lost = self.cancelled, self._lost
        if cancelled is not None:  # the log is closed to us too: say it only locally
            return Result("cancelled", code, cancelled, manifest, report=False)
        if lost is not None or (outcome is not None and outcome.stopped_by in NOT_OURS):
            why = lost or "the lease could not be renewed in time"
            self.log.event("error", f"build stopped: lease lost ({why}); the job is not ours")
            return Result("lost", code, why, manifest, report=False)
        return None

    def _judge(self, outcome: Outcome, manifest: list[ArtifactFile] | None) -> Result:
        code = outcome.exit_code
        stopped = self._not_ours(outcome, manifest)
        if stopped is not None:
            return stopped
        if outcome.error is not None:
            return Result("failed", None, f"the build could not run: {outcome.error}", manifest)
        if outcome.stopped_by == "timeout":
            limit = self.assignment.timeout_seconds or 0.0
            reason = f"build timed out after {limit:g} s; its process group was killed"
            return Result("failed", code, reason, manifest)
        if outcome.stopped_by == "cancel":  # not the coordinator's cancel: the agent's own
            reason = f"build cancelled: agent {self.options.name} was stopped"
            return Result("failed", code, reason, manifest)
        if code == 0:
            return Result("succeeded", 0, None, manifest)
        if code is None:
            name = _signal_name(outcome.signal)
            return Result("failed", None, f"build killed by {name}", manifest)
        if code == 127:
            reason = f"build command not found (exit 127): {self.last_line or 'no output'}"
        elif code == 126:
            reason = f"build command cannot be executed (exit 126): {self.last_line}"
        else:
            reason = f"build failed with exit code {code}"
        return Result("failed", code, reason, manifest)

    def _report(self, result: Result) -> None:
        job = self.job
        if result.status == "succeeded":
            self.log.event("success", "build succeeded")
        else:
            self.log.event("error", result.reason or "build failed")
        self.log.close()
        # The coordinator refuses a duration over a week; a build that long (a branch without
        # a timeout) still reports its result, with the week as its duration.
        duration = min(time.monotonic() - self.granted_at, MAX_DURATION_SECONDS)
        try:
            call_with_retry(
                lambda: self.client.complete_job(
                    job.id,
                    status=result.status,
                    exit_code=result.exit_code,
                    duration=duration,
                    reason=result.reason,
                    server=self.options.name,
                    fencing_token=job.fencing_token,
                    manifest=result.manifest,
                    artifact_root=str(self.workspace.artifacts_path(job.branch, job.id)),
                ),
                what=f"job {job.id}: report",
                patience=self.options.report_patience,
            )
        except Unavailable as exc:
            log.error("job %d: result lost, the coordinator stayed unreachable: %s", job.id, exc)
            return
        except BuildcoordError as exc:
            # A stale token (the job was re-leased) or a cancelled job: not ours to finish.
            log.warning("job %d: the coordinator refused the result, dropped: %s", job.id, exc)
            return
        if result.status == "succeeded":
            log.info("job %d: succeeded in %.1f s", job.id, duration)
        else:
            log.info("job %d: failed in %.1f s: %s", job.id, duration, result.reason)


def _signal_name(number: int | None) -> str:
    if number is None:
        return "an unknown cause"
    try:
        return f"signal {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"
