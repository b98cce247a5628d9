"""The client's calls to /locks: named leases with fencing tokens."""

from __future__ import annotations

from buildcoord.client.transport import Transport
from buildcoord.models import Lock, LockGrant, ReleasedLock


class LockEndpoints(Transport):
    """Locks: list, acquire, renew, release, recover expired ones."""

    def list_locks(self) -> list[Lock]:
        """List locks."""
        return self._parse(list[Lock], self._call("GET", "/locks"))

    def acquire_lock(
        self, name: str, holder: str, *, ttl: float | None = None, capacity: int | None = None
    ) -> LockGrant:
        """Take a lease."""
        body = {"name": name, "holder": holder, "ttl": ttl, "capacity": capacity}
        return self._parse(LockGrant, self._call("POST", "/locks/acquire", json=body))

    def renew_lock(
        self, name: str, holder: str, *, token: int | None = None, ttl: float | None = None
    ) -> LockGrant:
        """Extend a lease."""
        body = {"name": name, "holder": holder, "token": token, "ttl": ttl}
        return self._parse(LockGrant, self._call("POST", "/locks/renew", json=body))

    def release_lock(
        self, name: str, holder: str | None, *, token: int | None = None, force: bool = False
    ) -> list[str]:
        """Release a lease; return whose leases ended."""
        body = {"name": name, "holder": holder, "token": token, "force": force}
        return list(self._call("POST", "/locks/release", json=body)["released"])

    def recover_locks(self) -> list[ReleasedLock]:
        """Release expired leases now."""
        return self._parse(list[ReleasedLock], self._call("POST", "/locks/recover"))
