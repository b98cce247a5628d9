"""The client's calls to /servers: registration, listing, removal and heartbeats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import Metrics, RotatedToken, Server


class ServerEndpoints(Transport):
    """Build servers: register, list, show, remove, heartbeat."""

    def register_server(self, name: str, labels: Sequence[str] = ()) -> tuple[Server, str]:
        """Register a server; return it and its agent token."""
        data = self._call("POST", "/servers", json={"name": name, "labels": list(labels)})
        return self._parse(Server, data["server"]), str(data["token"])

    def list_servers(self) -> list[Server]:
        """List servers."""
        return self._parse(list[Server], self._call("GET", "/servers"))

    def get_server(self, name: str) -> Server:
        """Show one server."""
        return self._parse(Server, self._call("GET", f"/servers/{name}"))

    def quarantine_server(self, name: str, reason: str) -> Server:
        """Stop giving a server new work."""
        data = self._call("POST", f"/servers/{name}/quarantine", json={"reason": reason})
        return self._parse(Server, data)

    def resume_server(self, name: str) -> Server:
        """Give a quarantined server work again."""
        return self._parse(Server, self._call("POST", f"/servers/{name}/resume"))

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
        """Send a heartbeat; labels, when given, replace those the agent reported before."""
        figures = {key: getattr(metrics, key) for key in Metrics.__dataclass_fields__}
        body: dict[str, Any] = {"metrics": figures, "agent_version": agent_version}
        if labels is not None:
            body["labels"] = list(labels)
        return self._parse(Server, self._call("POST", f"/servers/{name}/heartbeat", json=body))

    def rotate_agent_token(self, name: str, *, grace_seconds: float = 3600.0) -> RotatedToken:
        """A new agent token for the server (shown once); the old one lasts the grace."""
        body = {"grace_seconds": grace_seconds}
        found = self._call("POST", f"/servers/{name}/rotate-token", json=body)
        return self._parse(RotatedToken, found)
