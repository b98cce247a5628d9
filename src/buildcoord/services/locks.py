"""Lock rules: who may hold, renew and release; TTL bounds; expired-lease recovery."""

from __future__ import annotations

from buildcoord import validation
from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import Forbidden, InvalidInput
from buildcoord.models import (
    MAX_DURATION_SECONDS,
    SYSTEM,
    Lock,
    LockGrant,
    Principal,
    ReleasedLock,
)
from buildcoord.services.authority import require_operator, require_reader
from buildcoord.store import Store

MAX_TTL = MAX_DURATION_SECONDS
MAX_CAPACITY = 10_000


def lock_name(value: str) -> str:
    """Check a lock name: any printable text up to 200 characters (spaces and quotes are fine)."""
    limit = validation.LOCK_NAME_LIMIT
    if not value.strip() or len(value) > limit or not value.isprintable():
        raise InvalidInput(f"invalid lock name {value!r}: 1-{limit} printable characters")
    return value


class LockService:
    """Acquire, renew, release, list and recover named locks."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    def _check_holder(self, holder: str, by: Principal) -> str:
        validation.server_name(holder, what="holder")
        if by.kind == "agent":
            if holder != by.server:
                raise Forbidden(f"agent {by.server} may only hold locks as {by.server}")
        else:
            require_operator(by, "taking locks")
        return holder

    def _ttl(self, ttl: float | None) -> float:
        """The lease length asked for, or the lock_ttl_seconds setting; bounded."""
        chosen = ttl if ttl is not None else self.settings.lock_ttl_seconds
        return validation.positive(chosen, what="ttl", maximum=MAX_TTL)

    def acquire(
        self,
        name: str,
        holder: str,
        *,
        ttl: float | None = None,
        capacity: int | None = None,
        by: Principal,
    ) -> LockGrant:
        """Take (or re-enter) a lease and return its fencing token."""
        lock_name(name)
        self._check_holder(holder, by)
        seconds = self._ttl(ttl)
        if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidInput(f"invalid capacity {capacity!r}: expected 1 to {MAX_CAPACITY}")
        return self.store.acquire_lock(
            name,
            holder,
            ttl=seconds,
            capacity=capacity,
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )

    def renew(
        self,
        name: str,
        holder: str,
        *,
        token: int | None = None,
        ttl: float | None = None,
        by: Principal,
    ) -> LockGrant:
        """Extend a lease the holder still has."""
        lock_name(name)
        self._check_holder(holder, by)
        seconds = self._ttl(ttl)
        return self.store.renew_lock(
            name,
            holder,
            token=token,
            ttl=seconds,
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )

    def release(
        self,
        name: str,
        holder: str | None,
        *,
        token: int | None = None,
        force: bool = False,
        by: Principal,
    ) -> list[str]:
        """Release holder's lease; only operators may force or release someone else's."""
        lock_name(name)
        if force:
            require_operator(by, "forcing a lock release")
        elif holder is None:
            raise InvalidInput("name the holder whose lease to release (or force it)")
        if holder is not None:
            self._check_holder(holder, by)
        return self.store.release_lock(
            name,
            holder,
            token=token,
            force=force,
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )

    def list_locks(self, *, by: Principal) -> list[Lock]:
        """Return every lock and its holders."""
        require_reader(by, "reading locks")
        return self.store.list_locks(now=self.clock.now().timestamp())

    def recover_expired(self, *, by: Principal = SYSTEM) -> list[ReleasedLock]:
        """Release expired leases, one system message per lease."""
        require_operator(by, "recovering locks")
        now = self.clock.now().timestamp()
        released = self.store.recover_expired_locks(now=now, actor=by.actor)
        if by.kind == "operator":  # maintenance does this every second: not an audited request
            self.store.record_action(
                at=now,
                actor=by.actor,
                kind="locks.recover",
                subject="locks",
                after={"released": [lock.name for lock in released[:100]]},
            )
        return released
