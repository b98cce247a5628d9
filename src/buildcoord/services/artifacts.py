"""Artifacts kept on agents: the registry, pins, retention and cleanup.

The coordinator decides what goes (per branch and server, the newest ``keep`` builds stay,
and never a pinned build nor the branch's last known good one); the agent that owns the
files carries it out, inside its artifacts root only, and reports the bytes it freed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import InvalidInput
from buildcoord.models import SYSTEM, AgentOrder, ArtifactFile, ArtifactSet, Job, Principal
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.services.orders import OrderService
from buildcoord.store import Store

log = logging.getLogger("buildcoord.artifacts")

MAX_KEEP = 10_000


@dataclass(frozen=True, slots=True)
class CleanupPlan:
    """What a cleanup removes (or would, on a dry run) and the orders carrying it out."""

    keep: int
    dry_run: bool
    removals: list[ArtifactSet]
    orders: list[AgentOrder] = field(default_factory=list)

    @property
    def planned_bytes(self) -> int:
        """Bytes the removed builds' manifests add up to."""
        return sum(item.total_bytes for item in self.removals)


class ArtifactService:
    """The artifact registry and its retention."""

    def __init__(
        self, store: Store, clock: Clock, settings: Settings, orders: OrderService
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.orders = orders
        orders.handlers["artifacts.remove"] = self._removed

    def record(self, job: Job, root: str) -> ArtifactSet:
        """Record where a finished job's artifacts are kept on its agent."""
        return self.store.record_artifact_set(
            job.id, root, now=self.clock.now().timestamp(), actor=SYSTEM.actor
        )

    def list_sets(
        self,
        *,
        server: str | None = None,
        branch: str | None = None,
        include_removed: bool = False,
        limit: int = 100,
        by: Principal,
    ) -> list[ArtifactSet]:
        """Artifact sets, newest first."""
        require_reader(by, "reading artifacts")
        return self.store.list_artifact_sets(
            server=server, branch=branch, include_removed=include_removed, limit=limit
        )

    def get(self, job_id: int, *, by: Principal) -> ArtifactSet:
        """One job's artifact set."""
        require_reader(by, "reading artifacts")
        return self.store.get_artifact_set(job_id)

    def manifest(self, job_id: int, *, by: Principal) -> list[ArtifactFile]:
        """The artifact manifest a job's build reported, sorted by path."""
        require_reader(by, "reading manifests")
        return self.store.job_manifest(job_id)

    def latest(self, branch: str, server: str, *, by: Principal) -> ArtifactSet | None:
        """The newest successful build of branch on server that still has its artifacts."""
        require_reader(by, "reading artifacts")
        found = self.store.list_artifact_sets(server=server, branch=branch, succeeded=True, limit=1)
        return found[0] if found else None

    def pin(self, job_id: int, pinned: bool, *, by: Principal) -> ArtifactSet:
        """Keep a build's artifacts whatever retention says (or stop keeping them)."""
        require_operator(by, "pinning artifacts")
        return self.store.set_artifacts_pinned(
            job_id, pinned, now=self.clock.now().timestamp(), actor=by.actor
        )

    def plan(
        self, keep: int, *, server: str | None = None, branch: str | None = None
    ) -> list[ArtifactSet]:
        """The sets retention removes: past the newest ``keep`` per branch and server,
        never pinned, never a branch's last known good build."""
        groups: dict[tuple[str, str], list[ArtifactSet]] = defaultdict(list)
        for item in self.store.list_artifact_sets(server=server, branch=branch):
            groups[(item.branch, item.server)].append(item)
        ordered = self._removal_ordered(server)
        doomed: list[ArtifactSet] = []
        for sets in groups.values():  # each newest first
            doomed += [
                item
                for item in sets[keep:]
                if not item.pinned and not item.last_good and item.job_id not in ordered
            ]
        return doomed

    def _removal_ordered(self, server: str | None) -> set[int]:
        """Jobs whose removal an agent has been asked for and not yet reported."""
        pending = self.store.list_orders(server=server, status="pending", limit=10_000)
        return {
            item["job_id"]
            for order in pending
            if order.kind == "artifacts.remove"
            for item in order.params.get("sets", [])
            if isinstance(item, dict) and isinstance(item.get("job_id"), int)
        }

    def cleanup(
        self,
        *,
        keep: int,
        server: str | None = None,
        branch: str | None = None,
        dry_run: bool = False,
        by: Principal,
    ) -> CleanupPlan:
        """Remove old builds' artifacts (each agent removes its own); or say what would go."""
        require_operator(by, "cleaning up artifacts")
        if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= MAX_KEEP:
            raise InvalidInput(f"invalid --keep {keep!r}: expected 0 to {MAX_KEEP}")
        removals = self.plan(keep, server=server, branch=branch)
        if dry_run:
            return CleanupPlan(keep, True, removals)
        orders = self._order_removal(removals, actor=by.actor)
        self.store.record_action(
            at=self.clock.now().timestamp(),
            actor=by.actor,
            kind="artifacts.cleanup",
            subject="artifacts",
            after={"keep": keep, "server": server, "branch": branch, "sets": len(removals)},
        )
        return CleanupPlan(keep, False, removals, orders)

    def apply_retention(self, job: Job) -> list[AgentOrder]:
        """After a build: enforce the default retention for its branch on its server."""
        if job.server is None:
            return []
        doomed = self.plan(self.settings.artifact_keep_builds, server=job.server, branch=job.branch)
        return self._order_removal(doomed, actor=SYSTEM.actor)

    def _order_removal(self, doomed: list[ArtifactSet], *, actor: str) -> list[AgentOrder]:
        by_server: dict[str, list[ArtifactSet]] = defaultdict(list)
        for item in doomed:
            by_server[item.server].append(item)
        orders = []
        for server, sets in sorted(by_server.items()):
            params: dict[str, Any] = {
                "sets": [
                    {"job_id": item.job_id, "branch": item.branch, "path": item.root}
                    for item in sets
                ]
            }
            orders.append(self.orders.create(server, "artifacts.remove", params, actor=actor))
        return orders

    def _removed(self, order: AgentOrder) -> None:
        """The agent's report on a removal: the registry records what really went."""
        result = order.result or {}
        freed: dict[int, int] = {}
        for item in result.get("removed", []):
            if isinstance(item, dict) and isinstance(item.get("job_id"), int):
                size = item.get("freed_bytes")
                freed[item["job_id"]] = size if isinstance(size, int) and size >= 0 else 0
        if freed:
            self.store.mark_artifacts_removed(
                freed, now=self.clock.now().timestamp(), actor=f"agent:{order.server}"
            )
