"""Named locks and counting semaphores with fencing tokens, strictly increasing per name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import BROADCAST, Lock, LockGrant, LockHolder, ReleasedLock
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.messages import insert_message
from buildcoord.store.schema import lock_holders, locks
from buildcoord.store.timestamps import from_epoch

SYSTEM = "system"
RECOVERY_SUBJECT = "Lock timeout recovery"


def recovery_body(name: str, holder: str) -> str:
    """The system message text for a released expired lease.

    The legacy scripts' wording, kept because users search their messages for it.
    """
    return f"Released expired lock '{name}' that was held by {holder}"


class LockStore:
    """SQL for locks."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def acquire_lock(
        self,
        name: str,
        holder: str,
        *,
        ttl: float,
        capacity: int | None,
        now: float,
        actor: str,
    ) -> LockGrant:
        """Take a lease, re-enter one's own, or raise Conflict naming the current holders."""
        with write_transaction(self.engine) as conn:
            self._ensure_lock_row(conn, name, capacity or 1)
            lock = conn.execute(select(locks).where(locks.c.name == name).with_for_update()).one()
            if capacity is not None and capacity != lock.capacity:
                conn.execute(update(locks).where(locks.c.name == name).values(capacity=capacity))
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="lock.capacity_changed",
                    subject=f"lock:{name}",
                    before={"capacity": lock.capacity},
                    after={"capacity": capacity},
                )
            limit = capacity if capacity is not None else lock.capacity
            self._release_expired(conn, now=now, actor=actor, name=name)
            mine = conn.execute(
                select(lock_holders).where(
                    lock_holders.c.name == name, lock_holders.c.holder == holder
                )
            ).one_or_none()
            if mine is not None:
                conn.execute(
                    update(lock_holders)
                    .where(lock_holders.c.name == name, lock_holders.c.holder == holder)
                    .values(expires_at=now + ttl)
                )
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="lock.reacquired",
                    subject=f"lock:{name}",
                    after={"holder": holder, "token": mine.token, "expires_at": now + ttl},
                )
                return LockGrant(name, holder, mine.token, from_epoch(now + ttl), True)
            # Token order is acquisition order, with no ties between leases taken at one instant.
            others = (
                conn.execute(
                    select(lock_holders.c.holder)
                    .where(lock_holders.c.name == name)
                    .order_by(lock_holders.c.token)
                )
                .scalars()
                .all()
            )
            if len(others) >= limit:
                raise Conflict(f"Lock '{name}' is held by {', '.join(others)}")
            token = lock.last_token + 1
            conn.execute(update(locks).where(locks.c.name == name).values(last_token=token))
            conn.execute(
                insert(lock_holders).values(
                    name=name, holder=holder, token=token, acquired_at=now, expires_at=now + ttl
                )
            )
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="lock.acquired",
                subject=f"lock:{name}",
                after={"holder": holder, "token": token, "expires_at": now + ttl},
            )
            return LockGrant(name, holder, token, from_epoch(now + ttl), False)

    def renew_lock(
        self, name: str, holder: str, *, token: int | None, ttl: float, now: float, actor: str
    ) -> LockGrant:
        """Extend a lease still held (by holder and, if given, token)."""
        with write_transaction(self.engine) as conn:
            current = self._holder_row(conn, name, holder)
            if token is not None and current.token != token:
                raise Conflict(
                    f"stale fencing token {token} for lock '{name}': {holder} holds "
                    f"token {current.token}"
                )
            conn.execute(
                update(lock_holders)
                .where(lock_holders.c.name == name, lock_holders.c.holder == holder)
                .values(expires_at=now + ttl)
            )
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="lock.renewed",
                subject=f"lock:{name}",
                after={"holder": holder, "token": current.token, "expires_at": now + ttl},
            )
            return LockGrant(name, holder, current.token, from_epoch(now + ttl), True)

    def release_lock(
        self,
        name: str,
        holder: str | None,
        *,
        token: int | None,
        force: bool,
        now: float,
        actor: str,
    ) -> list[str]:
        """Release holder's lease (or, forced with no holder, every lease); return who lost it."""
        with write_transaction(self.engine) as conn:
            if conn.execute(select(locks.c.name).where(locks.c.name == name)).first() is None:
                raise NotFound(f"lock '{name}' does not exist")
            if holder is None:
                if not force:
                    raise Conflict("name the holder, or force the release as an operator")
                released = list(
                    conn.execute(
                        select(lock_holders.c.holder).where(lock_holders.c.name == name)
                    ).scalars()
                )
                conn.execute(delete(lock_holders).where(lock_holders.c.name == name))
            else:
                current = self._holder_row(conn, name, holder)
                if token is not None and current.token != token and not force:
                    raise Conflict(
                        f"stale fencing token {token} for lock '{name}': {holder} holds "
                        f"token {current.token}"
                    )
                conn.execute(
                    delete(lock_holders).where(
                        lock_holders.c.name == name, lock_holders.c.holder == holder
                    )
                )
                released = [holder]
            for who in released:
                append_event(
                    conn,
                    at=now,
                    actor=actor,
                    kind="lock.released",
                    subject=f"lock:{name}",
                    before={"holder": who},
                    after={"forced": force},
                )
            return released

    def list_locks(self, *, now: float) -> list[Lock]:
        """Return every lock with its holders, expired leases flagged."""
        with read_transaction(self.engine) as conn:
            lock_rows = conn.execute(select(locks).order_by(locks.c.name)).all()
            holder_rows = conn.execute(
                select(lock_holders).order_by(lock_holders.c.name, lock_holders.c.token)
            ).all()
        holders: dict[str, list[LockHolder]] = {}
        for row in holder_rows:
            holders.setdefault(row.name, []).append(
                LockHolder(
                    holder=row.holder,
                    token=row.token,
                    acquired_at=from_epoch(row.acquired_at),
                    expires_at=from_epoch(row.expires_at),
                    expired=row.expires_at < now,
                )
            )
        return [
            Lock(row.name, row.capacity, row.last_token, tuple(holders.get(row.name, ())))
            for row in lock_rows
        ]

    def recover_expired_locks(self, *, now: float, actor: str) -> list[ReleasedLock]:
        """Release every expired lease, posting one system message for each."""
        with write_transaction(self.engine) as conn:
            return self._release_expired(conn, now=now, actor=actor, name=None)

    # -- helpers -----------------------------------------------------------------------------

    def _release_expired(
        self, conn: Connection, *, now: float, actor: str, name: str | None
    ) -> list[ReleasedLock]:
        query = (
            select(lock_holders)
            .where(lock_holders.c.expires_at < now)
            .order_by(lock_holders.c.name, lock_holders.c.holder)
        )
        if name is not None:
            query = query.where(lock_holders.c.name == name)
        released: list[ReleasedLock] = []
        for row in conn.execute(query).all():
            gone = conn.execute(
                delete(lock_holders).where(
                    lock_holders.c.name == row.name,
                    lock_holders.c.holder == row.holder,
                    lock_holders.c.token == row.token,
                )
            ).rowcount
            if not gone:
                continue
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="lock.expired_released",
                subject=f"lock:{row.name}",
                before={"holder": row.holder, "token": row.token, "expires_at": row.expires_at},
            )
            insert_message(
                conn,
                sender=SYSTEM,
                recipient=BROADCAST,
                type="warning",
                subject=RECOVERY_SUBJECT,
                body=recovery_body(row.name, row.holder),
                ack_required=False,
                now=now,
                actor=actor,
            )
            released.append(
                ReleasedLock(row.name, row.holder, row.token, from_epoch(row.expires_at))
            )
        return released

    def _ensure_lock_row(self, conn: Connection, name: str, capacity: int) -> None:
        values: dict[str, Any] = {"name": name, "capacity": capacity, "last_token": 0}
        if conn.dialect.name == "postgresql":
            conn.execute(pg_insert(locks).values(**values).on_conflict_do_nothing())
        else:
            conn.execute(sqlite_insert(locks).values(**values).on_conflict_do_nothing())

    def _holder_row(self, conn: Connection, name: str, holder: str) -> Row[Any]:
        row = conn.execute(
            select(lock_holders).where(lock_holders.c.name == name, lock_holders.c.holder == holder)
        ).one_or_none()
        if row is not None:
            return row
        if conn.execute(select(locks.c.name).where(locks.c.name == name)).first() is None:
            raise NotFound(f"lock '{name}' does not exist")
        current = ", ".join(
            conn.execute(
                select(lock_holders.c.holder)
                .where(lock_holders.c.name == name)
                .order_by(lock_holders.c.token)
            ).scalars()
        )
        if current:
            raise Conflict(f"Lock '{name}' is held by {current}, not {holder}")
        raise Conflict(f"Lock '{name}' is not held by {holder}")
