"""Rollback: every successful build is registered as its branch's last known good one, and
(per branch, default on) tagged ``build-success-<branch>-<UTC stamp>`` in the branch's
repository by the agent that built it. Cleanup deletes old tags there and the registry
follows once the agent reports.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from buildcoord.clock import Clock
from buildcoord.errors import InvalidInput, NotFound
from buildcoord.models import SYSTEM, AgentOrder, Branch, GoodBuild, Job, Principal
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.services.orders import OrderService
from buildcoord.store import Store

TAG_PREFIX = "build-success-"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
STAMP_EXAMPLE = "20261126T000000Z"
MAX_KEEP = 10_000


def tag_name(branch: str, moment: datetime) -> str:
    """``build-success-<branch, / → ->-<YYYYMMDDTHHMMSSZ>``."""
    stamp = moment.astimezone(UTC).strftime(STAMP_FORMAT)
    return f"{TAG_PREFIX}{branch.replace('/', '-')}-{stamp}"


def _tag_of_second(branch: str, second: int) -> str:
    """The branch's tag for a UTC second given in epoch seconds."""
    return tag_name(branch, datetime.fromtimestamp(second, UTC))


def tag_message(job: Job, artifact_count: int) -> str:
    """The annotation: one ``Key: value`` line each, read back by ``rollback to``."""
    return "\n".join(
        [
            f"Successful build: {job.id}",
            f"Branch: {job.branch}",
            f"Commit: {job.commit}",
            f"Job ID: {job.id}",
            f"Server: {job.server}",
            f"Artifacts: {artifact_count}",
        ]
    )


@dataclass(frozen=True, slots=True)
class TagCleanup:
    """Tags a cleanup deletes (or would) and the orders carrying it out."""

    keep: int
    dry_run: bool
    removals: list[GoodBuild]
    orders: list[AgentOrder] = field(default_factory=list)


class RollbackService:
    """The rollback registry and success tags."""

    def __init__(self, store: Store, clock: Clock, orders: OrderService) -> None:
        self.store = store
        self.clock = clock
        self.orders = orders
        orders.handlers["tag.create"] = self._tagged
        orders.handlers["tags.delete"] = self._tags_deleted

    def record_success(
        self, job: Job, artifact_count: int, branch: Branch | None = None
    ) -> GoodBuild:
        """Register a successful build; order its tag when the branch wants one."""
        finished = job.finished_at or self.clock.now()
        if branch is None:
            branch = self.store.find_branch(job.branch)
        want_tag = branch is not None and branch.tag_on_success and job.server is not None
        message = tag_message(job, artifact_count) if want_tag else None
        good = self.store.record_good_build(
            job_id=job.id,
            branch=job.branch,
            commit=job.commit,
            server=job.server or "",
            artifact_count=artifact_count,
            succeeded_at=finished.timestamp(),
            tag_for=partial(_tag_of_second, job.branch) if want_tag else None,
            tag_message=message,
            actor=SYSTEM.actor,
        )
        if good.tag is not None and branch is not None and job.server is not None:
            self.orders.create(
                job.server,
                "tag.create",
                {
                    "job_id": job.id,
                    "tag": good.tag,
                    "repo": branch.repo,
                    "commit": job.commit,
                    "message": message,
                    "push": branch.push_tags,
                },
                actor=SYSTEM.actor,
            )
        return good

    def list_builds(
        self, branch: str | None = None, *, limit: int = 20, by: Principal
    ) -> list[GoodBuild]:
        """Successful builds (newest first), with their tags."""
        require_reader(by, "reading the rollback registry")
        if branch is not None:
            self.store.get_branch(branch)
        return self.store.list_good_builds(branch=branch, limit=limit)

    def show(self, tag: str, *, by: Principal) -> GoodBuild:
        """One tag's registry entry."""
        require_reader(by, "reading the rollback registry")
        return self.store.good_build_by_tag(tag)

    def last_good(self, branch: str, *, by: Principal) -> GoodBuild:
        """The branch's last known good build."""
        require_reader(by, "reading the rollback registry")
        self.store.get_branch(branch)
        good = self.store.last_good_build(branch)
        if good is None:
            raise NotFound(f"no successful build recorded for branch {branch}")
        return good

    def cleanup(
        self, *, keep: int, branch: str | None = None, dry_run: bool = False, by: Principal
    ) -> TagCleanup:
        """Delete all but the newest ``keep`` success tags of each branch (or of one)."""
        require_operator(by, "cleaning up tags")
        if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= MAX_KEEP:
            raise InvalidInput(f"invalid --keep {keep!r}: expected 1 to {MAX_KEEP}")
        if branch is not None:
            self.store.get_branch(branch)
        per_branch: dict[str, list[GoodBuild]] = defaultdict(list)
        for good in self.store.list_good_builds(branch=branch, tagged_only=True, limit=None):
            per_branch[good.branch].append(good)
        removals = [good for goods in per_branch.values() for good in goods[keep:]]
        if dry_run:
            return TagCleanup(keep, True, removals)
        by_server: dict[tuple[str, str], list[str]] = defaultdict(list)
        repos = {b.name: b.repo for b in self.store.list_branches()}
        for good in removals:
            if good.tag_state in ("pending", "failed") or good.branch not in repos:
                # Never written (or the branch is gone): nothing to delete in a repository.
                self.store.mark_tags_removed(
                    [good.tag or ""], now=self.clock.now().timestamp(), actor=by.actor
                )
                continue
            by_server[(good.server, repos[good.branch])].append(good.tag or "")
        branch_of = {good.tag: good.branch for good in removals}
        orders = [
            self.orders.create(
                server,
                "tags.delete",
                {
                    "repo": repo,
                    "tags": tags,
                    "push": self._push_setting(branch_of.get(tags[0])),
                },
                actor=by.actor,
            )
            for (server, repo), tags in sorted(by_server.items())
        ]
        return TagCleanup(keep, False, removals, orders)

    def _push_setting(self, branch: str | None) -> bool:
        found = None if branch is None else self.store.find_branch(branch)
        return True if found is None else found.push_tags

    def _tagged(self, order: AgentOrder) -> None:
        result = order.result or {}
        job_id = order.params.get("job_id")
        if not isinstance(job_id, int):
            return
        self.store.record_tag_outcome(
            job_id,
            written=order.status == "done",
            pushed=bool(result.get("pushed")),
            error=order.error,
            now=self.clock.now().timestamp(),
            actor=f"agent:{order.server}",
        )

    def _tags_deleted(self, order: AgentOrder) -> None:
        deleted = (order.result or {}).get("deleted", [])
        tags = [tag for tag in deleted if isinstance(tag, str)]
        if tags:
            self.store.mark_tags_removed(
                tags, now=self.clock.now().timestamp(), actor=f"agent:{order.server}"
            )
