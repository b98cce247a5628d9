"""The client's calls to /branches: setting up branches and checking their remote tips."""

from __future__ import annotations

from collections.abc import Sequence

from buildcoord.client.transport import Transport
from buildcoord.models import Branch, BranchCheck


class BranchEndpoints(Transport):
    """Branches set up for building."""

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
        return self._parse(Branch, self._call("POST", "/branches", json=body))

    def update_branch(self, name: str, **changes: bool | str | None) -> Branch:
        """Change a branch's settings (tag_on_success, push_tags, retry_on_failure,
        auto_build, schedule ("" removes it), enabled); None leaves one as it is."""
        body = {key: value for key, value in changes.items() if value is not None}
        return self._parse(Branch, self._call("PATCH", f"/branches/{name}", json=body))

    def check_branch_updates(self, names: Sequence[str] | None = None) -> list[BranchCheck]:
        """Read enabled auto-build branches' remote tips now; queue each new one once."""
        body = {"branches": None if names is None else list(names)}
        data = self._call("POST", "/branches/check-updates", json=body)
        return self._parse(list[BranchCheck], data)

    def queue_all_branches(self) -> list[BranchCheck]:
        """Queue every enabled branch's remote tip unless that commit has a job already."""
        return self._parse(list[BranchCheck], self._call("POST", "/branches/queue-all"))

    def list_branches(self) -> list[Branch]:
        """List branches."""
        return self._parse(list[Branch], self._call("GET", "/branches"))

    def get_branch(self, name: str) -> Branch:
        """Show one branch."""
        return self._parse(Branch, self._call("GET", f"/branches/{name}"))

    def remove_branch(self, name: str) -> None:
        """Forget a branch."""
        self._call("DELETE", f"/branches/{name}")
