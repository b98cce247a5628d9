"""The client's calls to /artifacts and /comparisons: kept builds and reproducibility verdicts."""

from __future__ import annotations

from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import AgentOrder, ArtifactSet, ComparisonRecord


class ArtifactEndpoints(Transport):
    """Artifact sets kept on agents, their cleanup, and the comparisons between them."""

    def artifact_sets(
        self,
        *,
        server: str | None = None,
        branch: str | None = None,
        include_removed: bool = False,
        limit: int = 100,
    ) -> list[ArtifactSet]:
        """Builds' artifacts kept on agents, newest first."""
        params: dict[str, Any] = {"limit": limit, "include_removed": include_removed}
        if server is not None:
            params["server"] = server
        if branch is not None:
            params["branch"] = branch
        return self._parse(list[ArtifactSet], self._call("GET", "/artifacts", params=params))

    def artifact_set(self, job_id: int) -> ArtifactSet:
        """One job's artifact set."""
        return self._parse(ArtifactSet, self._call("GET", f"/artifacts/{job_id}"))

    def latest_artifact_set(self, branch: str, server: str) -> ArtifactSet | None:
        """The newest successful build of branch on server that still has its artifacts."""
        data = self._call("GET", "/artifacts/latest", params={"branch": branch, "server": server})
        return None if data is None else self._parse(ArtifactSet, data)

    def pin_artifacts(self, job_id: int, pinned: bool = True) -> ArtifactSet:
        """Pin (or unpin) a build's artifacts."""
        method = "PUT" if pinned else "DELETE"
        return self._parse(ArtifactSet, self._call(method, f"/artifacts/{job_id}/pin"))

    def cleanup_artifacts(
        self,
        *,
        keep: int,
        server: str | None = None,
        branch: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Start (or plan) an artifact cleanup: {keep, dry_run, planned_bytes, removals, orders}."""
        body = {"keep": keep, "server": server, "branch": branch, "dry_run": dry_run}
        data: dict[str, Any] = self._call("POST", "/artifacts/cleanup", json=body)
        data["removals"] = self._parse(list[ArtifactSet], data["removals"])
        data["orders"] = self._parse(list[AgentOrder], data["orders"])
        return data

    def comparisons(
        self, *, branch: str | None = None, job: int | None = None
    ) -> list[ComparisonRecord]:
        """Reproducibility verdicts the coordinator recorded, newest first."""
        params: dict[str, Any] = {}
        if branch is not None:
            params["branch"] = branch
        if job is not None:
            params["job"] = job
        return self._parse(list[ComparisonRecord], self._call("GET", "/comparisons", params=params))
