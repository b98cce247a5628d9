"""Branch rules: who sets up a branch and what a valid one looks like."""

from __future__ import annotations

from collections.abc import Sequence

from buildcoord import validation
from buildcoord.clock import Clock
from buildcoord.errors import InvalidInput
from buildcoord.models import Branch, Principal
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.store import Store

COMMAND_LIMIT = 10_000
MAX_TIMEOUT = 7 * 24 * 3600.0


class BranchService:
    """Add, list, show and remove branches; the build command is set here and nowhere else."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def add(
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
        by: Principal,
    ) -> Branch:
        """Set up a branch for building."""
        require_operator(by, "setting up a branch")
        validation.branch_name(name)
        validation.text(repo, what="repository", maximum=4096)
        if command is not None:
            validation.text(command, what="build command", maximum=COMMAND_LIMIT)
        if timeout_seconds is not None:
            validation.positive(timeout_seconds, what="timeout", maximum=MAX_TIMEOUT)
        if "\n" in repo or repo.startswith("-"):
            raise InvalidInput(f"invalid repository {repo!r}")
        return self.store.branches.add_branch(
            name=name,
            repo=repo,
            command=command,
            priority=validation.priority(priority),
            labels=validation.labels(labels),
            timeout_seconds=timeout_seconds,
            retry_on_failure=retry_on_failure,
            tag_on_success=tag_on_success,
            push_tags=push_tags,
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )

    def get(self, name: str, *, by: Principal) -> Branch:
        """Show one branch."""
        require_reader(by, "reading branches")
        return self.store.branches.get_branch(name)

    def list_branches(self, *, by: Principal) -> list[Branch]:
        """List branches."""
        require_reader(by, "reading branches")
        return self.store.branches.list_branches()

    def update(
        self,
        name: str,
        *,
        tag_on_success: bool | None = None,
        push_tags: bool | None = None,
        retry_on_failure: bool | None = None,
        by: Principal,
    ) -> Branch:
        """Change a branch's switches; the ones left None stay as they are."""
        require_operator(by, "changing a branch")
        changes = {
            key: value
            for key, value in (
                ("tag_on_success", tag_on_success),
                ("push_tags", push_tags),
                ("retry_on_failure", retry_on_failure),
            )
            if value is not None
        }
        if not changes:
            return self.store.branches.get_branch(name)
        return self.store.branches.update_branch(
            name, changes, now=self.clock.now().timestamp(), actor=by.actor
        )

    def remove(self, name: str, *, by: Principal) -> None:
        """Forget a branch."""
        require_operator(by, "removing a branch")
        self.store.branches.remove_branch(name, now=self.clock.now().timestamp(), actor=by.actor)
