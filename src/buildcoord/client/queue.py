"""The client's calls to /jobs: submitting, listing, leasing and finishing jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import ArtifactFile, ForecastJob, Job, JobForecast


class QueueEndpoints(Transport):
    """The job queue: submit, list, claim, renew, build tokens, complete, cancel, retry."""

    def submit_job(
        self,
        branch: str,
        commit: str | None = None,
        *,
        priority: int | None = None,
        depends_on: Sequence[int] = (),
        labels: Sequence[str] = (),
        trigger: str | None = None,
    ) -> Job:
        """Queue a job (trigger: what started it; None: the coordinator records manual)."""
        return self._submit(branch, commit, priority, depends_on, labels, trigger, False).job

    def submit_job_with_forecast(
        self,
        branch: str,
        commit: str | None = None,
        *,
        priority: int | None = None,
        depends_on: Sequence[int] = (),
        labels: Sequence[str] = (),
        trigger: str | None = None,
    ) -> ForecastJob:
        """Queue a job; with when it is predicted to start and finish (or why not)."""
        return self._submit(branch, commit, priority, depends_on, labels, trigger, True)

    def _submit(
        self,
        branch: str,
        commit: str | None,
        priority: int | None,
        depends_on: Sequence[int],
        labels: Sequence[str],
        trigger: str | None,
        forecast: bool,
    ) -> ForecastJob:
        body: dict[str, Any] = {
            "branch": branch,
            "commit": commit,
            "priority": priority,
            "depends_on": list(depends_on),
            "labels": list(labels),
        }
        if trigger is not None:  # left out otherwise: a coordinator before 0006 refuses it
            body["trigger"] = trigger
        # A coordinator before the forecast ignores the parameter and answers the job alone.
        params = {"forecast": "true" if forecast else "false"}
        data = self._call("POST", "/jobs", json=body, params=params)
        found = data.get("forecast") if isinstance(data, dict) else None
        return ForecastJob(
            job=self._parse(Job, data),
            forecast=None if found is None else self._parse(JobForecast, found),
        )

    def list_jobs(
        self,
        *,
        status: str | None = None,
        branch: str | None = None,
        server: str | None = None,
        limit: int = 200,
    ) -> list[Job]:
        """List jobs."""
        params = {
            "status": status,
            "branch": branch,
            "server": server,
            "limit": limit,
            "forecast": "false",
        }
        data = self._call("GET", "/jobs", params={k: v for k, v in params.items() if v is not None})
        return self._parse(list[Job], data)

    def list_jobs_with_forecast(
        self,
        *,
        status: str | None = None,
        branch: str | None = None,
        server: str | None = None,
        limit: int = 200,
    ) -> list[ForecastJob]:
        """List jobs with their forecasts (queued: predicted start and finish; running: time
        left)."""
        params = {"status": status, "branch": branch, "server": server, "limit": limit}
        data = self._call("GET", "/jobs", params={k: v for k, v in params.items() if v is not None})
        return [
            ForecastJob(
                job=self._parse(Job, item),
                forecast=None
                if item.get("forecast") is None
                else self._parse(JobForecast, item["forecast"]),
            )
            for item in data
        ]

    def get_job(self, job_id: int) -> Job:
        """Show one job."""
        return self._parse(Job, self._call("GET", f"/jobs/{job_id}"))

    def claim_job(self, server: str) -> Job | None:
        """Lease the next job for server, or None."""
        data = self._call("POST", "/jobs/claim", json={"server": server})
        return None if data is None else self._parse(Job, data)

    def renew_job(self, job_id: int, *, server: str, fencing_token: int) -> Job:
        """Extend a job lease."""
        body = {"server": server, "fencing_token": fencing_token}
        return self._parse(Job, self._call("POST", f"/jobs/{job_id}/renew", json=body))

    def build_token(self, job_id: int, *, server: str, fencing_token: int) -> str:
        """A token for the build of a job this server holds: it may append to its log only."""
        body = {"server": server, "fencing_token": fencing_token}
        return str(self._call("POST", f"/jobs/{job_id}/build-token", json=body)["token"])

    def complete_job(
        self,
        job_id: int,
        *,
        status: str,
        exit_code: int | None = None,
        duration: float | None = None,
        reason: str | None = None,
        server: str | None = None,
        fencing_token: int | None = None,
        manifest: Sequence[ArtifactFile] | None = None,
        artifact_root: str | None = None,
    ) -> Job:
        """Finish a running job (with the artifact manifest and where the files are kept)."""
        body: dict[str, Any] = {
            "status": status,
            "exit_code": exit_code,
            "duration": duration,
            "reason": reason,
            "server": server,
            "fencing_token": fencing_token,
        }
        if manifest is not None:
            body["manifest"] = [asdict(item) for item in manifest]
            if artifact_root is not None:
                body["artifact_root"] = artifact_root
        return self._parse(Job, self._call("POST", f"/jobs/{job_id}/complete", json=body))

    def cancel_job(self, job_id: int, *, reason: str | None = None) -> Job:
        """Cancel a job."""
        data = self._call("POST", f"/jobs/{job_id}/cancel", json={"reason": reason})
        return self._parse(Job, data)

    def set_job_priority(self, job_id: int, priority: int) -> Job:
        """Change a queued or blocked job's priority."""
        data = self._call("POST", f"/jobs/{job_id}/priority", json={"priority": priority})
        return self._parse(Job, data)

    def retry_job(self, job_id: int) -> Job:
        """Retry a failed or cancelled job."""
        return self._parse(Job, self._call("POST", f"/jobs/{job_id}/retry"))
