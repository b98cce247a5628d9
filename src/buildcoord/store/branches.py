"""Branches set up for building: repository, build command, priority, labels, timeout.

Also the poller's state per branch (the tip it last saw, when it looked, what went wrong, when
the schedule next fires). Each change of that state is a compare-and-set, so two pollers (two
threads, or two coordinators on one PostgreSQL) never both act on the same observation.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, Row, delete, insert, select, update

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import Branch
from buildcoord.store.engine import driver_read, read_transaction, sql, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.schema import branches
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

# The one-branch read every finished job and every agent claim makes: prebuilt, on the driver.
_COLUMNS = [column.name for column in branches.c]
_FIND = sql(
    "SELECT " + ", ".join(f'"{name}"' for name in _COLUMNS) + " FROM branches WHERE name = ?"
)


def branch_from_row(row: Row[Any] | SimpleNamespace) -> Branch:
    """Build a Branch from a row of the branches table."""
    return Branch(
        name=row.name,
        repo=row.repo,
        command=row.command,
        priority=row.priority,
        labels=tuple(label for label in row.labels.split(",") if label),
        timeout_seconds=row.timeout_seconds,
        retry_on_failure=bool(row.retry_on_failure),
        created_at=from_epoch(row.created_at),
        updated_at=from_epoch(row.updated_at),
        tag_on_success=bool(row.tag_on_success),
        push_tags=bool(row.push_tags),
        auto_build=bool(row.auto_build),
        schedule=row.schedule,
        enabled=bool(row.enabled),
        seen_commit=row.seen_commit,
        checked_at=from_epoch_or_none(row.checked_at),
        check_error=row.check_error,
        next_scheduled_at=from_epoch_or_none(row.next_scheduled_at),
    )


class BranchStore:
    """SQL for branches."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_branch(
        self,
        *,
        name: str,
        repo: str,
        command: str | None,
        priority: int,
        labels: tuple[str, ...],
        timeout_seconds: float | None,
        retry_on_failure: bool,
        tag_on_success: bool = True,
        push_tags: bool = True,
        auto_build: bool = True,
        schedule: str | None = None,
        enabled: bool = True,
        seen_commit: str | None = None,
        next_scheduled_at: float | None = None,
        now: float,
        actor: str,
    ) -> Branch:
        """Insert a branch; Conflict if it exists."""
        with write_transaction(self.engine) as conn:
            if conn.execute(select(branches.c.name).where(branches.c.name == name)).first():
                raise Conflict(f"branch {name} already exists")
            row = conn.execute(
                insert(branches)
                .values(
                    name=name,
                    repo=repo,
                    command=command,
                    priority=priority,
                    labels=",".join(labels),
                    timeout_seconds=timeout_seconds,
                    retry_on_failure=retry_on_failure,
                    tag_on_success=tag_on_success,
                    push_tags=push_tags,
                    auto_build=auto_build,
                    schedule=schedule,
                    enabled=enabled,
                    seen_commit=seen_commit,
                    checked_at=None if seen_commit is None else now,
                    next_scheduled_at=next_scheduled_at,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*branches.c)
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="branch.added",
                subject=f"branch:{name}",
                after={
                    "repo": repo,
                    "command": command,
                    "priority": priority,
                    "enabled": enabled,
                    "auto_build": auto_build,
                    "schedule": schedule,
                    "seen_commit": seen_commit,
                },
            )
            return branch_from_row(row)

    def get_branch(self, name: str) -> Branch:
        """Return one branch or raise NotFound."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(branches).where(branches.c.name == name)).one_or_none()
        if row is None:
            raise NotFound(f"branch {name} is not set up (add it with 'buildcoord branches add')")
        return branch_from_row(row)

    def find_branch(self, name: str) -> Branch | None:
        """Return one branch or None."""
        with driver_read(self.engine) as db:
            row = db.run(_FIND, (name,)).fetchone()
        return (
            None
            if row is None
            else branch_from_row(SimpleNamespace(**dict(zip(_COLUMNS, row, strict=True))))
        )

    def list_branches(self) -> list[Branch]:
        """Return every branch by name."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(branches).order_by(branches.c.name)).all()
        return [branch_from_row(row) for row in rows]

    def update_branch(
        self, name: str, changes: dict[str, Any], *, now: float, actor: str
    ) -> Branch:
        """Change some of a branch's settings (columns named in changes)."""
        with write_transaction(self.engine) as conn:
            before = conn.execute(select(branches).where(branches.c.name == name)).one_or_none()
            if before is None:
                raise NotFound(f"branch {name} is not set up")
            row = conn.execute(
                update(branches)
                .where(branches.c.name == name)
                .values(**changes, updated_at=now)
                .returning(*branches.c)
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="branch.updated",
                subject=f"branch:{name}",
                before={key: getattr(before, key) for key in changes},
                after=changes,
            )
            return branch_from_row(row)

    def remove_branch(self, name: str, *, now: float, actor: str) -> None:
        """Delete a branch (its jobs stay; agents no longer claim its queued ones)."""
        with write_transaction(self.engine) as conn:
            if not conn.execute(delete(branches).where(branches.c.name == name)).rowcount:
                raise NotFound(f"branch {name} is not set up")
            append_event(conn, at=now, actor=actor, kind="branch.removed", subject=f"branch:{name}")

    # -- the poller's state ------------------------------------------------------------------

    def record_tip(self, name: str, *, expected: str | None, tip: str, now: float) -> bool:
        """Move seen_commit from expected to tip; False when another poller moved it first."""
        seen = branches.c.seen_commit
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(branches)
                .where(
                    branches.c.name == name,
                    seen.is_(None) if expected is None else seen == expected,
                )
                .values(seen_commit=tip, checked_at=now)
            ).rowcount
            if changed:
                append_event(
                    conn,
                    at=now,
                    actor="system:branches",
                    kind="branch.tip_seen",
                    subject=f"branch:{name}",
                    before={"seen_commit": expected},
                    after={"seen_commit": tip},
                )
            return bool(changed)

    def record_check_success(self, name: str, *, now: float) -> bool:
        """Note a successful look at the repository; True when it ends a failure streak."""
        return self._record_check(
            name,
            streak_edge=branches.c.check_error.is_not(None),
            error=None,
            kind="branch.check_recovered",
            now=now,
        )

    def record_check_failure(self, name: str, error: str, *, now: float) -> bool:
        """Note a failed look; True only for the first failure of a streak (alert once)."""
        return self._record_check(
            name,
            streak_edge=branches.c.check_error.is_(None),
            error=error,
            kind="branch.check_failed",
            now=now,
        )

    def _record_check(
        self, name: str, *, streak_edge: Any, error: str | None, kind: str, now: float
    ) -> bool:
        """Set check_error and checked_at; an event (and True) only where a streak turns."""
        with write_transaction(self.engine) as conn:
            turned = conn.execute(
                update(branches)
                .where(branches.c.name == name, streak_edge)
                .values(check_error=error, checked_at=now)
            ).rowcount
            if turned:
                append_event(
                    conn,
                    at=now,
                    actor="system:branches",
                    kind=kind,
                    subject=f"branch:{name}",
                    after=None if error is None else {"error": error},
                )
            else:
                conn.execute(
                    update(branches)
                    .where(branches.c.name == name)
                    .values(check_error=error, checked_at=now)
                )
            return bool(turned)

    def advance_schedule(self, name: str, *, expected: float | None, next_at: float | None) -> bool:
        """Move next_scheduled_at from expected to next_at; False when another poller did."""
        column = branches.c.next_scheduled_at
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(branches)
                .where(
                    branches.c.name == name,
                    column.is_(None) if expected is None else column == expected,
                )
                .values(next_scheduled_at=next_at)
            ).rowcount
            return bool(changed)
