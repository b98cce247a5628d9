"""The client's calls to /rollback: good builds, success tags and their cleanup."""

from __future__ import annotations

from typing import Any

from buildcoord.client.transport import Transport
from buildcoord.models import AgentOrder, GoodBuild


class RollbackEndpoints(Transport):
    """The rollback registry: good builds, tags, last good builds, tag cleanup."""

    def good_builds(self, branch: str | None = None, *, limit: int = 20) -> list[GoodBuild]:
        """Successful builds with their tags, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if branch is not None:
            params["branch"] = branch
        return self._parse(list[GoodBuild], self._call("GET", "/rollback/builds", params=params))

    def tag(self, tag: str) -> GoodBuild:
        """One success tag's registry entry."""
        return self._parse(GoodBuild, self._call("GET", f"/rollback/tags/{tag}"))

    def last_good(self, branch: str) -> GoodBuild:
        """A branch's last known good build."""
        return self._parse(GoodBuild, self._call("GET", f"/rollback/last-good/{branch}"))

    def cleanup_tags(
        self, *, keep: int, branch: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Start (or plan) a tag cleanup: {keep, dry_run, removals, orders}."""
        body = {"keep": keep, "branch": branch, "dry_run": dry_run}
        data: dict[str, Any] = self._call("POST", "/rollback/cleanup", json=body)
        data["removals"] = self._parse(list[GoodBuild], data["removals"])
        data["orders"] = self._parse(list[AgentOrder], data["orders"])
        return data
