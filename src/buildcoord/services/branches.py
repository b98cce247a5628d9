"""Branch rules: who sets up a branch and what a valid one looks like."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from buildcoord import git, validation
from buildcoord.clock import Clock
from buildcoord.cron import CronSchedule
from buildcoord.errors import BuildcoordError, CommitKnown, InvalidInput
from buildcoord.models import MAX_DURATION_SECONDS, TRIGGER_MANUAL, Branch, Principal
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.services.queue import QueueService
from buildcoord.store import Store

MAX_TIMEOUT = MAX_DURATION_SECONDS
# Adding a branch reads its tip once; a repository that slow is left to the poller.
ADD_TIP_TIMEOUT = 20.0


def parse_schedule(schedule: str | None) -> CronSchedule | None:
    """None for no schedule (None or blank), else the parsed cron expression."""
    if schedule is None or not schedule.strip():
        return None
    return CronSchedule.parse(schedule)


class BranchService:
    """Add, list, show and remove branches; the build command is set here and nowhere else."""

    def __init__(self, store: Store, clock: Clock, queue: QueueService) -> None:
        self.store = store
        self.clock = clock
        self.queue = queue

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
        auto_build: bool = True,
        schedule: str | None = None,
        enabled: bool = True,
        build_now: bool = False,
        by: Principal,
    ) -> Branch:
        """Set up a branch for building.

        Its current tip is recorded as seen, so that adding many branches starts no builds;
        build_now queues that tip. A repository that cannot be read now is no error (the
        poller records the tip at its first successful look), unless build_now needs it.
        """
        require_operator(by, "setting up a branch")
        validation.branch_name(name)
        validation.text(repo, what="repository", maximum=validation.PATH_LIMIT)
        if command is not None:
            validation.text(command, what="build command", maximum=validation.COMMAND_LIMIT)
        if timeout_seconds is not None:
            validation.positive(timeout_seconds, what="timeout", maximum=MAX_TIMEOUT)
        if "\n" in repo or repo.startswith("-"):
            raise InvalidInput(f"invalid repository {repo!r}")
        cron = parse_schedule(schedule)
        if build_now and not enabled:
            raise InvalidInput("a disabled branch cannot be built now: drop --build-now")
        tip: str | None = None
        try:
            tip = git.branch_tip(repo, name, timeout=ADD_TIP_TIMEOUT)
        except BuildcoordError:
            if build_now:
                raise
        now = self.clock.now()
        branch = self.store.add_branch(
            name=name,
            repo=repo,
            command=command,
            priority=validation.priority(priority),
            labels=validation.labels(labels),
            timeout_seconds=timeout_seconds,
            retry_on_failure=retry_on_failure,
            tag_on_success=tag_on_success,
            push_tags=push_tags,
            auto_build=auto_build,
            schedule=None if cron is None else cron.expression,
            enabled=enabled,
            seen_commit=tip,
            next_scheduled_at=None if cron is None else cron.next_after(now).timestamp(),
            now=now.timestamp(),
            actor=by.actor,
        )
        if build_now and tip is not None:
            # A branch set up again after removal may have built that commit already.
            with contextlib.suppress(CommitKnown):
                self.queue.submit(name, tip, once_per_commit=True, trigger=TRIGGER_MANUAL, by=by)
        return branch

    def get(self, name: str, *, by: Principal) -> Branch:
        """Show one branch."""
        require_reader(by, "reading branches")
        return self.store.get_branch(name)

    def list_branches(self, *, by: Principal) -> list[Branch]:
        """List branches."""
        require_reader(by, "reading branches")
        return self.store.list_branches()

    def update(
        self,
        name: str,
        *,
        tag_on_success: bool | None = None,
        push_tags: bool | None = None,
        retry_on_failure: bool | None = None,
        auto_build: bool | None = None,
        schedule: str | None = None,
        enabled: bool | None = None,
        by: Principal,
    ) -> Branch:
        """Change a branch's switches; the ones left None stay as they are.

        schedule: a cron expression, or "" to remove the schedule. Turning a branch on again
        records nothing: the poller's next look queues its tip if that commit is new; its
        schedule resumes at its next time from now (runs due while it was off do not fire).
        """
        require_operator(by, "changing a branch")
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("tag_on_success", tag_on_success),
                ("push_tags", push_tags),
                ("retry_on_failure", retry_on_failure),
                ("auto_build", auto_build),
                ("enabled", enabled),
            )
            if value is not None
        }
        now = self.clock.now()
        if schedule is not None:
            cron = parse_schedule(schedule)
            changes["schedule"] = None if cron is None else cron.expression
            changes["next_scheduled_at"] = (
                None if cron is None else cron.next_after(now).timestamp()
            )
        elif enabled:
            current = self.store.get_branch(name)
            cron = parse_schedule(current.schedule) if not current.enabled else None
            if cron is not None:
                changes["next_scheduled_at"] = cron.next_after(now).timestamp()
        if not changes:
            return self.store.get_branch(name)
        return self.store.update_branch(name, changes, now=now.timestamp(), actor=by.actor)

    def remove(self, name: str, *, by: Principal) -> None:
        """Forget a branch."""
        require_operator(by, "removing a branch")
        self.store.remove_branch(name, now=self.clock.now().timestamp(), actor=by.actor)
