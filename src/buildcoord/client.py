"""The typed HTTP client shared by the CLI and the agent."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter

from buildcoord.errors import (
    BuildcoordError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)
from buildcoord.models import (
    AgentOrder,
    ArtifactFile,
    ArtifactSet,
    Assignment,
    Branch,
    BranchCheck,
    ComparisonRecord,
    DurationEstimate,
    Event,
    ForecastJob,
    GoodBuild,
    HistoryStats,
    IssuedToken,
    Job,
    JobForecast,
    Lock,
    LockGrant,
    LogEntry,
    Message,
    MessageStats,
    Metrics,
    Recommendation,
    ReleasedLock,
    Server,
    Token,
)

T = TypeVar("T")

_BY_STATUS: dict[int, type[BuildcoordError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
    400: InvalidInput,
    503: Unavailable,
}
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _parse(kind: type[T], data: Any) -> T:
    """Validate JSON data into a model (dataclass, list of them, ...)."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    result: T = adapter.validate_python(data)
    return result


class Client:
    """Talks to one coordinator's /api/v1 with one bearer token."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """Connect to base_url; tests pass ``http`` (a Starlette TestClient) to skip sockets."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        if http is None:
            http = httpx.Client(timeout=timeout, transport=transport)
        http.base_url = httpx.URL(self.base_url + "/api/v1/")
        http.headers.update(headers)
        self.http = http

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path.lstrip("/"), **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the coordinator at {self.base_url}: {exc}") from exc
        if response.status_code == 204:
            return None
        if response.is_success:
            return response.json()
        self._raise_for(response)

    def _raise_for(self, response: httpx.Response) -> Any:
        """Raise the error class matching a failed response, with the server's message."""
        try:
            message = response.json().get("error") or response.text
        except ValueError:
            message = response.text or response.reason_phrase
        error = _BY_STATUS.get(response.status_code, BuildcoordError)
        raise error(str(message))

    # -- servers ---------------------------------------------------------------------------

    def register_server(self, name: str, labels: Sequence[str] = ()) -> tuple[Server, str]:
        """Register a server; return it and its agent token."""
        data = self._call("POST", "/servers", json={"name": name, "labels": list(labels)})
        return _parse(Server, data["server"]), str(data["token"])

    def list_servers(self) -> list[Server]:
        """List servers."""
        return _parse(list[Server], self._call("GET", "/servers"))

    def get_server(self, name: str) -> Server:
        """Show one server."""
        return _parse(Server, self._call("GET", f"/servers/{name}"))

    def remove_server(self, name: str) -> None:
        """Remove a server."""
        self._call("DELETE", f"/servers/{name}")

    def heartbeat(
        self,
        name: str,
        metrics: Metrics,
        *,
        agent_version: str | None = None,
        labels: Sequence[str] | None = None,
    ) -> Server:
        """Send a heartbeat."""
        figures = {key: getattr(metrics, key) for key in Metrics.__dataclass_fields__}
        body: dict[str, Any] = {"metrics": figures, "agent_version": agent_version}
        if labels is not None:
            body["labels"] = list(labels)
        return _parse(Server, self._call("POST", f"/servers/{name}/heartbeat", json=body))

    # -- jobs ------------------------------------------------------------------------------

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
        body: dict[str, Any] = {
            "branch": branch,
            "commit": commit,
            "priority": priority,
            "depends_on": list(depends_on),
            "labels": list(labels),
        }
        if trigger is not None:  # left out otherwise: a coordinator before 0006 refuses it
            body["trigger"] = trigger
        return _parse(Job, self._call("POST", "/jobs", json=body))

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
        return _parse(list[Job], data)

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
                job=_parse(Job, item),
                forecast=None
                if item.get("forecast") is None
                else _parse(JobForecast, item["forecast"]),
            )
            for item in data
        ]

    def get_job(self, job_id: int) -> Job:
        """Show one job."""
        return _parse(Job, self._call("GET", f"/jobs/{job_id}"))

    def claim_job(self, server: str) -> Job | None:
        """Lease the next job for server, or None."""
        data = self._call("POST", "/jobs/claim", json={"server": server})
        return None if data is None else _parse(Job, data)

    def renew_job(self, job_id: int, *, server: str, fencing_token: int) -> Job:
        """Extend a job lease."""
        body = {"server": server, "fencing_token": fencing_token}
        return _parse(Job, self._call("POST", f"/jobs/{job_id}/renew", json=body))

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
        return _parse(Job, self._call("POST", f"/jobs/{job_id}/complete", json=body))

    def cancel_job(self, job_id: int, *, reason: str | None = None) -> Job:
        """Cancel a job."""
        return _parse(Job, self._call("POST", f"/jobs/{job_id}/cancel", json={"reason": reason}))

    def retry_job(self, job_id: int) -> Job:
        """Retry a failed or cancelled job."""
        return _parse(Job, self._call("POST", f"/jobs/{job_id}/retry"))

    # -- prediction ------------------------------------------------------------------------

    def predict_duration(
        self, branch: str, server: str | None = None, *, trigger: str | None = None
    ) -> DurationEstimate:
        """Predict the duration of the next build of branch (on server, started by trigger)."""
        params = {"branch": branch, "server": server, "trigger": trigger}
        wanted = {name: value for name, value in params.items() if value is not None}
        return _parse(DurationEstimate, self._call("GET", "/predict/duration", params=wanted))

    def recommend_server(self, branch: str, *, trigger: str | None = None) -> Recommendation:
        """The server with the earliest predicted finish for a build of branch (by trigger)."""
        params = {"branch": branch} | ({} if trigger is None else {"trigger": trigger})
        data = self._call("GET", "/predict/recommend", params=params)
        return _parse(Recommendation, data)

    def history_stats(self) -> HistoryStats:
        """Build history tables by branch, server, hour and weekday."""
        return _parse(HistoryStats, self._call("GET", "/predict/stats"))

    # -- locks -----------------------------------------------------------------------------

    def list_locks(self) -> list[Lock]:
        """List locks."""
        return _parse(list[Lock], self._call("GET", "/locks"))

    def acquire_lock(
        self, name: str, holder: str, *, ttl: float | None = None, capacity: int | None = None
    ) -> LockGrant:
        """Take a lease."""
        body = {"name": name, "holder": holder, "ttl": ttl, "capacity": capacity}
        return _parse(LockGrant, self._call("POST", "/locks/acquire", json=body))

    def renew_lock(
        self, name: str, holder: str, *, token: int | None = None, ttl: float | None = None
    ) -> LockGrant:
        """Extend a lease."""
        body = {"name": name, "holder": holder, "token": token, "ttl": ttl}
        return _parse(LockGrant, self._call("POST", "/locks/renew", json=body))

    def release_lock(
        self, name: str, holder: str | None, *, token: int | None = None, force: bool = False
    ) -> list[str]:
        """Release a lease; return whose leases ended."""
        body = {"name": name, "holder": holder, "token": token, "force": force}
        return list(self._call("POST", "/locks/release", json=body)["released"])

    def recover_locks(self) -> list[ReleasedLock]:
        """Release expired leases now."""
        return _parse(list[ReleasedLock], self._call("POST", "/locks/recover"))

    # -- messages --------------------------------------------------------------------------

    def send_message(
        self,
        *,
        sender: str,
        recipient: str,
        type: str,
        subject: str,
        body: str,
        ack_required: bool = False,
    ) -> Message:
        """Send a message."""
        payload = {
            "sender": sender,
            "recipient": recipient,
            "type": type,
            "subject": subject,
            "body": body,
            "ack_required": ack_required,
        }
        return _parse(Message, self._call("POST", "/messages", json=payload))

    def list_messages(
        self,
        *,
        recipient: str | None = None,
        unread: bool = False,
        archived: str = "no",
        limit: int = 500,
    ) -> list[Message]:
        """List messages."""
        params: dict[str, Any] = {"unread": unread, "archived": archived, "limit": limit}
        if recipient is not None:
            params["to"] = recipient
        return _parse(list[Message], self._call("GET", "/messages", params=params))

    def get_message(self, message_id: int, *, reader: str | None = None) -> Message:
        """Show one message."""
        params = {"reader": reader} if reader else {}
        return _parse(Message, self._call("GET", f"/messages/{message_id}", params=params))

    def mark_message_read(self, message_id: int, *, reader: str | None = None) -> bool:
        """Mark one message read; False if it already was."""
        data = self._call("POST", f"/messages/{message_id}/read", json={"reader": reader})
        return bool(data["changed"])

    def mark_all_messages_read(self, *, reader: str | None = None) -> int:
        """Mark all unread messages read; return how many."""
        return int(self._call("POST", "/messages/read-all", json={"reader": reader})["count"])

    def acknowledge_message(self, message_id: int, *, server: str) -> Message:
        """Acknowledge a message."""
        data = self._call("POST", f"/messages/{message_id}/ack", json={"server": server})
        return _parse(Message, data)

    def archive_messages(self, *, days: float | None = None) -> int:
        """Archive old read messages; return how many."""
        return int(self._call("POST", "/messages/archive", json={"days": days})["count"])

    def message_stats(self) -> MessageStats:
        """Count messages."""
        return _parse(MessageStats, self._call("GET", "/messages/stats"))

    # -- tokens, events, system ------------------------------------------------------------

    def create_token(self, name: str, *, kind: str = "operator") -> IssuedToken:
        """Create a token."""
        data = self._call("POST", "/tokens", json={"name": name, "kind": kind})
        return _parse(IssuedToken, data)

    def list_tokens(self) -> list[Token]:
        """List tokens."""
        return _parse(list[Token], self._call("GET", "/tokens"))

    def revoke_token(self, token_id: int) -> Token:
        """Revoke a token."""
        return _parse(Token, self._call("DELETE", f"/tokens/{token_id}"))

    def list_events(
        self, *, subject: str | None = None, after: int = 0, limit: int = 100
    ) -> list[Event]:
        """Read the audit trail."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        if subject is not None:
            params["subject"] = subject
        return _parse(list[Event], self._call("GET", "/events", params=params))

    def health(self) -> dict[str, Any]:
        """Ask whether the coordinator is up."""
        data: dict[str, Any] = self._call("GET", "/health")
        return data

    def maintenance_step(self) -> dict[str, Any]:
        """Run one maintenance pass now."""
        data: dict[str, Any] = self._call("POST", "/maintenance/step")
        return data

    # -- branches --------------------------------------------------------------------------

    def add_branch(
        self,
        name: str,
        *,
        repo: str,
        command: str | None,
        priority: int = 5,
        labels: Sequence[str] = (),
        timeout_seconds: float | None = None,
        retry_on_failure: bool = False,
        tag_on_success: bool = True,
        push_tags: bool = True,
        auto_build: bool = True,
        schedule: str | None = None,
        enabled: bool = True,
        build_now: bool = False,
    ) -> Branch:
        """Set up a branch for building (its tip is recorded as seen; build_now queues it)."""
        body = {
            "name": name,
            "repo": repo,
            "command": command,
            "priority": priority,
            "labels": list(labels),
            "timeout_seconds": timeout_seconds,
            "retry_on_failure": retry_on_failure,
            "tag_on_success": tag_on_success,
            "push_tags": push_tags,
            "auto_build": auto_build,
            "schedule": schedule,
            "enabled": enabled,
            "build_now": build_now,
        }
        return _parse(Branch, self._call("POST", "/branches", json=body))

    def update_branch(self, name: str, **changes: bool | str | None) -> Branch:
        """Change a branch's settings (tag_on_success, push_tags, retry_on_failure,
        auto_build, schedule ("" removes it), enabled); None leaves one as it is."""
        body = {key: value for key, value in changes.items() if value is not None}
        return _parse(Branch, self._call("PATCH", f"/branches/{name}", json=body))

    def check_branch_updates(self, names: Sequence[str] | None = None) -> list[BranchCheck]:
        """Read enabled auto-build branches' remote tips now; queue each new one once."""
        body = {"branches": None if names is None else list(names)}
        return _parse(list[BranchCheck], self._call("POST", "/branches/check-updates", json=body))

    def queue_all_branches(self) -> list[BranchCheck]:
        """Queue every enabled branch's remote tip unless that commit has a job already."""
        return _parse(list[BranchCheck], self._call("POST", "/branches/queue-all"))

    def list_branches(self) -> list[Branch]:
        """List branches."""
        return _parse(list[Branch], self._call("GET", "/branches"))

    def get_branch(self, name: str) -> Branch:
        """Show one branch."""
        return _parse(Branch, self._call("GET", f"/branches/{name}"))

    def remove_branch(self, name: str) -> None:
        """Forget a branch."""
        self._call("DELETE", f"/branches/{name}")

    # -- agents, logs, manifests -----------------------------------------------------------

    def claim_assignment(self, server: str) -> Assignment | None:
        """Lease the next job this agent can build, with its recipe; None when idle."""
        data = self._call("POST", f"/agents/{server}/claim")
        return None if data is None else _parse(Assignment, data)

    def session_events(self, server: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Hold the agent's live session open, yielding (event, data) until it drops.

        The server's keepalive comments come out as ``("keepalive", {})``, so that the
        reader gets control back every second (to notice it should stop) even when no
        event arrives.
        """
        try:
            with self.http.stream(
                "GET", f"agents/{server}/session", timeout=httpx.Timeout(10.0, read=15.0)
            ) as response:
                if not response.is_success:
                    response.read()
                    self._raise_for(response)
                event = "message"
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        yield event, json.loads(line[5:].strip() or "{}")
                        event = "message"
                    elif line.startswith(":"):
                        yield "keepalive", {}
        except httpx.TransportError as exc:
            raise Unavailable(f"session with {self.base_url} dropped: {exc}") from exc

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
        return _parse(list[LogEntry], data)

    def manifest(self, job_id: int) -> list[ArtifactFile]:
        """The artifact manifest a build reported."""
        return _parse(list[ArtifactFile], self._call("GET", f"/jobs/{job_id}/manifest"))

    # -- orders (agents) -------------------------------------------------------------------

    def pending_orders(self, server: str) -> list[AgentOrder]:
        """The orders this agent has yet to carry out, oldest first."""
        return _parse(list[AgentOrder], self._call("GET", f"/agents/{server}/orders"))

    def report_order(
        self,
        server: str,
        order_id: int,
        *,
        status: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> AgentOrder:
        """Say how an order went."""
        body = {"status": status, "result": result, "error": error}
        data = self._call("POST", f"/agents/{server}/orders/{order_id}", json=body)
        return _parse(AgentOrder, data)

    def order(self, order_id: int) -> AgentOrder:
        """One order."""
        return _parse(AgentOrder, self._call("GET", f"/orders/{order_id}"))

    # -- artifacts, comparisons, rollback --------------------------------------------------

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
        return _parse(list[ArtifactSet], self._call("GET", "/artifacts", params=params))

    def artifact_set(self, job_id: int) -> ArtifactSet:
        """One job's artifact set."""
        return _parse(ArtifactSet, self._call("GET", f"/artifacts/{job_id}"))

    def latest_artifact_set(self, branch: str, server: str) -> ArtifactSet | None:
        """The newest successful build of branch on server that still has its artifacts."""
        data = self._call("GET", "/artifacts/latest", params={"branch": branch, "server": server})
        return None if data is None else _parse(ArtifactSet, data)

    def pin_artifacts(self, job_id: int, pinned: bool = True) -> ArtifactSet:
        """Pin (or unpin) a build's artifacts."""
        method = "PUT" if pinned else "DELETE"
        return _parse(ArtifactSet, self._call(method, f"/artifacts/{job_id}/pin"))

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
        data["removals"] = _parse(list[ArtifactSet], data["removals"])
        data["orders"] = _parse(list[AgentOrder], data["orders"])
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
        return _parse(list[ComparisonRecord], self._call("GET", "/comparisons", params=params))

    def good_builds(self, branch: str | None = None, *, limit: int = 20) -> list[GoodBuild]:
        """Successful builds with their tags, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if branch is not None:
            params["branch"] = branch
        return _parse(list[GoodBuild], self._call("GET", "/rollback/builds", params=params))

    def tag(self, tag: str) -> GoodBuild:
        """One success tag's registry entry."""
        return _parse(GoodBuild, self._call("GET", f"/rollback/tags/{tag}"))

    def last_good(self, branch: str) -> GoodBuild:
        """A branch's last known good build."""
        return _parse(GoodBuild, self._call("GET", f"/rollback/last-good/{branch}"))

    def cleanup_tags(
        self, *, keep: int, branch: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Start (or plan) a tag cleanup: {keep, dry_run, removals, orders}."""
        body = {"keep": keep, "branch": branch, "dry_run": dry_run}
        data: dict[str, Any] = self._call("POST", "/rollback/cleanup", json=body)
        data["removals"] = _parse(list[GoodBuild], data["removals"])
        data["orders"] = _parse(list[AgentOrder], data["orders"])
        return data
