"""Branches set up for building: repository, build command, priority, labels, timeout.

Also the poller's state per branch (the tip it last saw, when it looked, what went wrong, when
the schedule next fires). Each change of that state is a compare-and-set, so two pollers (two
threads, or two coordinators on one PostgreSQL) never both act on the same observation.

Its statements are prebuilt SQL on the driver's cursor, like the job tables' (job_queries):
every successful build reads its branch (find_branch), and through SQLAlchemy Core that read
cost about 130 µs against 15 µs on the driver (SQLite, in process). One style for the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Engine

from buildcoord.errors import Conflict, InvalidInput, NotFound
from buildcoord.models import Branch
from buildcoord.store.engine import Driver, Sql, driver_read, driver_transaction, sql
from buildcoord.store.events import record_event
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

COLUMNS = (
    "name",
    "repo",
    "command",
    "priority",
    "labels",
    "timeout_seconds",
    "retry_on_failure",
    "created_at",
    "updated_at",
    "tag_on_success",
    "push_tags",
    "auto_build",
    "schedule",
    "enabled",
    "seen_commit",
    "checked_at",
    "check_error",
    "next_scheduled_at",
)
"""The branches table's columns, in the order branch_from_row reads them."""

_SWITCHES = frozenset({"retry_on_failure", "tag_on_success", "push_tags", "auto_build", "enabled"})
"""The boolean columns (SQLite stores them as 0 and 1)."""

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM branches"

# One branch by name.
FIND = sql(f"{_SELECT} WHERE name = ?")

# Every branch, by name.
LIST = sql(f"{_SELECT} ORDER BY name")

# A new branch (every column, in COLUMNS order).
INSERT = sql(
    f"INSERT INTO branches ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)

# Forget a branch (its jobs stay).
DELETE = sql("DELETE FROM branches WHERE name = ?")

# Move seen_commit from an expected tip (or from none) to a new one. Parameters: tip,
# checked_at, name[, expected].
RECORD_TIP = {
    True: sql(
        "UPDATE branches SET seen_commit = ?, checked_at = ? WHERE name = ? AND seen_commit IS NULL"
    ),
    False: sql(
        "UPDATE branches SET seen_commit = ?, checked_at = ? WHERE name = ? AND seen_commit = ?"
    ),
}

_CHECK = "UPDATE branches SET check_error = ?, checked_at = ? WHERE name = ?"

# Set the check's outcome only where a streak turns: by ``failing`` (a failure after none, or
# a success after failures). Parameters: check_error, checked_at, name.
CHECK_TURNS = {
    True: sql(f"{_CHECK} AND check_error IS NULL"),
    False: sql(f"{_CHECK} AND check_error IS NOT NULL"),
}

# Set the check's outcome. Parameters: check_error, checked_at, name.
CHECK = sql(_CHECK)

# Move next_scheduled_at from an expected time (or from none). Parameters: next_at, name[,
# expected].
ADVANCE_SCHEDULE = {
    True: sql(
        "UPDATE branches SET next_scheduled_at = ? WHERE name = ? AND next_scheduled_at IS NULL"
    ),
    False: sql(
        "UPDATE branches SET next_scheduled_at = ? WHERE name = ? AND next_scheduled_at = ?"
    ),
}


@cache
def update_columns(columns: tuple[str, ...]) -> Sql:
    """Set the named columns and updated_at. Parameters: *values, updated_at, name."""
    unknown = set(columns) - set(COLUMNS)
    if unknown or "name" in columns:
        raise InvalidInput(f"not a branch setting: {', '.join(sorted(unknown or {'name'}))}")
    assignments = ", ".join(f"{column} = ?" for column in (*columns, "updated_at"))
    return sql(f"UPDATE branches SET {assignments} WHERE name = ?")


def branch_from_row(row: Sequence[Any]) -> Branch:
    """Build a Branch from a row of the branches table (COLUMNS, in order)."""
    (
        name,
        repo,
        command,
        priority,
        labels,
        timeout_seconds,
        retry_on_failure,
        created_at,
        updated_at,
        tag_on_success,
        push_tags,
        auto_build,
        schedule,
        enabled,
        seen_commit,
        checked_at,
        check_error,
        next_scheduled_at,
    ) = row
    return Branch(
        name=name,
        repo=repo,
        command=command,
        priority=priority,
        labels=tuple(label for label in labels.split(",") if label),
        timeout_seconds=timeout_seconds,
        retry_on_failure=bool(retry_on_failure),
        created_at=from_epoch(created_at),
        updated_at=from_epoch(updated_at),
        tag_on_success=bool(tag_on_success),
        push_tags=bool(push_tags),
        auto_build=bool(auto_build),
        schedule=schedule,
        enabled=bool(enabled),
        seen_commit=seen_commit,
        checked_at=from_epoch_or_none(checked_at),
        check_error=check_error,
        next_scheduled_at=from_epoch_or_none(next_scheduled_at),
    )


def _find(db: Driver, name: str) -> Sequence[Any] | None:
    """One branch's row, or None."""
    row: Sequence[Any] | None = db.run(FIND, (name,)).fetchone()
    return row


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
        row = (
            name,
            repo,
            command,
            priority,
            ",".join(labels),
            timeout_seconds,
            retry_on_failure,
            now,
            now,
            tag_on_success,
            push_tags,
            auto_build,
            schedule,
            enabled,
            seen_commit,
            None if seen_commit is None else now,
            None,
            next_scheduled_at,
        )
        with driver_transaction(self.engine) as db:
            if _find(db, name) is not None:
                raise Conflict(f"branch {name} already exists")
            db.run(INSERT, row)
            record_event(
                db,
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
        found = self.find_branch(name)
        if found is None:
            raise NotFound(f"branch {name} is not set up (add it with 'buildcoord branches add')")
        return found

    def find_branch(self, name: str) -> Branch | None:
        """Return one branch or None."""
        with driver_read(self.engine) as db:
            row = _find(db, name)
        return None if row is None else branch_from_row(row)

    def list_branches(self) -> list[Branch]:
        """Return every branch by name."""
        with driver_read(self.engine) as db:
            rows = db.run(LIST).fetchall()
        return [branch_from_row(row) for row in rows]

    def update_branch(
        self, name: str, changes: dict[str, Any], *, now: float, actor: str
    ) -> Branch:
        """Change some of a branch's settings (columns named in changes)."""
        columns = tuple(changes)
        statement = update_columns(columns)
        with driver_transaction(self.engine) as db:
            before = _find(db, name)
            if before is None:
                raise NotFound(f"branch {name} is not set up")
            old = dict(zip(COLUMNS, before, strict=True))
            db.run(statement, (*changes.values(), now, name))
            row = _find(db, name)
            assert row is not None  # updated in this transaction
            record_event(
                db,
                at=now,
                actor=actor,
                kind="branch.updated",
                subject=f"branch:{name}",
                before={key: bool(old[key]) if key in _SWITCHES else old[key] for key in columns},
                after=changes,
            )
        return branch_from_row(row)

    def remove_branch(self, name: str, *, now: float, actor: str) -> None:
        """Delete a branch (its jobs stay; agents no longer claim its queued ones)."""
        with driver_transaction(self.engine) as db:
            if not db.run(DELETE, (name,)).rowcount:
                raise NotFound(f"branch {name} is not set up")
            record_event(db, at=now, actor=actor, kind="branch.removed", subject=f"branch:{name}")

    # -- the poller's state ------------------------------------------------------------------

    def record_tip(self, name: str, *, expected: str | None, tip: str, now: float) -> bool:
        """Move seen_commit from expected to tip; False when another poller moved it first."""
        params = (tip, now, name) if expected is None else (tip, now, name, expected)
        with driver_transaction(self.engine) as db:
            changed = db.run(RECORD_TIP[expected is None], params).rowcount
            if changed:
                record_event(
                    db,
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
        return self._record_check(name, error=None, kind="branch.check_recovered", now=now)

    def record_check_failure(self, name: str, error: str, *, now: float) -> bool:
        """Note a failed look; True only for the first failure of a streak (alert once)."""
        return self._record_check(name, error=error, kind="branch.check_failed", now=now)

    def _record_check(self, name: str, *, error: str | None, kind: str, now: float) -> bool:
        """Set check_error and checked_at; an event (and True) only where a streak turns."""
        params = (error, now, name)
        with driver_transaction(self.engine) as db:
            turned = db.run(CHECK_TURNS[error is not None], params).rowcount
            if turned:
                record_event(
                    db,
                    at=now,
                    actor="system:branches",
                    kind=kind,
                    subject=f"branch:{name}",
                    after=None if error is None else {"error": error},
                )
            else:
                db.run(CHECK, params)
            return bool(turned)

    def advance_schedule(self, name: str, *, expected: float | None, next_at: float | None) -> bool:
        """Move next_scheduled_at from expected to next_at; False when another poller did."""
        params = (next_at, name) if expected is None else (next_at, name, expected)
        with driver_transaction(self.engine) as db:
            return bool(db.run(ADVANCE_SCHEDULE[expected is None], params).rowcount)
