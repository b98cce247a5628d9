"""The coordinator's own health: whether its database takes writes.

A coordinator whose database refuses writes (a full disk, a read-only file, a standby) can
answer reads but queue, claim and report nothing; its health says so. The probe is a real
write (one row of the settings table), made at most every PROBE_EVERY_SECONDS per process
so that frequent health checks cost the database nothing more.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from buildcoord.clock import Clock
from buildcoord.errors import Unavailable
from buildcoord.models import Event, Principal
from buildcoord.services.authority import require_reader
from buildcoord.store import Store

PROBE_EVERY_SECONDS = 5.0
_PROBE_KEY = "health.write_probe"


@dataclass(frozen=True, slots=True)
class Health:
    """How the coordinator is: ``ok``, or ``degraded`` with the reason in one line."""

    status: str
    database: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong."""
        return self.status == "ok"


class SystemService:
    """The health check and the audit trail."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._probed_at: float | None = None
        self._refusal: str | None = None

    def health(self) -> Health:
        """ok, or degraded with the database's refusal when the last write probe failed."""
        now = self.clock.now().timestamp()
        with self._lock:  # one probe at a time; the others take its answer
            if self._probed_at is None or not 0 <= now - self._probed_at < PROBE_EVERY_SECONDS:
                self._refusal = self._probe(now)
                self._probed_at = now
            refusal = self._refusal
        database = self.store.dialect
        if refusal is None:
            return Health("ok", database)
        return Health("degraded", database, f"the database refuses writes: {refusal}")

    def events(
        self, *, subject: str | None = None, after_id: int = 0, limit: int = 100, by: Principal
    ) -> list[Event]:
        """Read the audit trail in order, optionally for one subject, after a cursor."""
        require_reader(by, "reading events")
        return self.store.list_events(subject=subject, after_id=after_id, limit=limit)

    def _probe(self, now: float) -> str | None:
        try:
            self.store.probe_write(_PROBE_KEY, repr(now))
        except Unavailable as exc:
            return str(exc)
        return None
