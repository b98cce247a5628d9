"""The client's calls to a job's log and its artifact manifest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import ArtifactFile, LogEntry


class LogEndpoints(Transport):
    """Job logs and the manifests builds reported."""

    def append_log(
        self,
        job_id: int,
        entries: Sequence[dict[str, Any]],
        *,
        server: str | None = None,
        fencing_token: int | None = None,
    ) -> int:
        """Append entries to a job's log."""
        body = {"server": server, "fencing_token": fencing_token, "entries": list(entries)}
        return int(self._call("POST", f"/jobs/{job_id}/log", json=body)["count"])

    def log_entries(self, job_id: int, *, after: int = 0) -> list[LogEntry]:
        """Read a job's log after a cursor."""
        data = self._call("GET", f"/jobs/{job_id}/log", params={"after": after})
        return self._parse(list[LogEntry], data)

    def manifest(self, job_id: int) -> list[ArtifactFile]:
        """The artifact manifest a build reported."""
        return self._parse(list[ArtifactFile], self._call("GET", f"/jobs/{job_id}/manifest"))
