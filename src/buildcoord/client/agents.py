"""The client's calls an agent makes for itself: claiming assignments, its live session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from buildcoord.client.transport import Transport
from buildcoord.errors import Unavailable
from buildcoord.models import Assignment


class AgentEndpoints(Transport):
    """An agent's claim of its next assignment and its live session."""

    def claim_assignment(self, server: str) -> Assignment | None:
        """Lease the next job this agent can build, with its recipe; None when idle."""
        data = self._call("POST", f"/agents/{server}/claim")
        return None if data is None else self._parse(Assignment, data)

    def session_events(self, server: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Hold the agent's live session open, yielding (event, data) until it drops.

        The server's keepalive comments come out as ``("keepalive", {})``, so that the
        reader gets control back every second (to notice it should stop) even when no
        event arrives.
        """
        opened_at = self.base_url
        try:
            with self.http.stream(
                "GET", f"agents/{server}/session", timeout=httpx.Timeout(10.0, read=15.0)
            ) as response:
                if not response.is_success:
                    response.read()
                    if response.status_code == 401 and self._token_file_changed():
                        raise Unavailable("the token file holds a new token: opening again")
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
            self.fail_over(opened_at)  # the session opens again at the next coordinator, if any
            raise Unavailable(f"session with {opened_at} dropped: {exc}") from exc
