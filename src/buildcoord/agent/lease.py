"""Keeping a job's lease: renew every lease/3 seconds, pass each renewal on to the supervisor.

The agent counts the lease from the moment it *sent* the request that granted it (claim or
renew), on its own monotonic clock: the coordinator's clock may be skewed, and the grant
cannot be older than the request. The supervisor learns the remaining time after each
renewal (``lease <seconds>``) and kills the build before it runs out, so a frozen or cut-off
agent's build is dead before the coordinator hands the job to someone else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from buildcoord.agent.backoff import delays
from buildcoord.agent.build import Build
from buildcoord.client import Client
from buildcoord.errors import BuildcoordError, Conflict, Unavailable
from buildcoord.models import Job

log = logging.getLogger("buildcoord.agent")

# Called once when the lease is gone: (why, whether the job was cancelled).
OnLost = Callable[[str, bool], None]


class LeaseKeeper:
    """Renews one job's lease from a thread of its own."""

    def __init__(
        self,
        client: Client,
        job: Job,
        *,
        server: str,
        lease_seconds: float,
        granted_at: float,
        on_lost: OnLost,
    ) -> None:
        self.client = client
        self.job = job
        self.server = server
        self.lease_seconds = lease_seconds
        self.interval = lease_seconds / 3
        self.on_lost = on_lost
        self.lost: str | None = None
        self._expires = granted_at + lease_seconds
        self._next = granted_at + self.interval
        self._build: Build | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="buildcoord-lease", daemon=True)

    def remaining(self) -> float:
        """Seconds of lease left, as far as the agent can prove."""
        with self._lock:
            return self._expires - time.monotonic()

    def attach(self, build: Build) -> None:
        """Tell this build's supervisor about every renewal from now on."""
        with self._lock:
            self._build = build

    def start(self) -> None:
        """Start renewing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the lease then runs out unless the job was completed)."""
        self._stop.set()
        # A renewal in flight may take a while on a slow coordinator; it is harmless then.
        self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        retry: Iterator[float] | None = None
        while not self._stop.wait(max(0.0, self._next - time.monotonic())):
            sent = time.monotonic()
            try:
                self.client.renew_job(
                    self.job.id, server=self.server, fencing_token=self.job.fencing_token
                )
            except Unavailable as exc:
                # Keep trying: the supervisor fences the build if this goes on too long.
                if retry is None:
                    log.warning("job %d: cannot renew the lease, retrying: %s", self.job.id, exc)
                    retry = delays()
                self._next = time.monotonic() + next(retry)
                continue
            except BuildcoordError as exc:
                self._lose(exc)
                return
            if retry is not None:
                log.warning("job %d: lease renewed again", self.job.id)
                retry = None
            with self._lock:
                self._expires = sent + self.lease_seconds
                build = self._build
            if build is not None:
                build.send(f"lease {self.remaining():.3f}")
            self._next = sent + self.interval

    def _lose(self, exc: BuildcoordError) -> None:
        cancelled = False
        if isinstance(exc, Conflict):
            try:
                cancelled = self.client.get_job(self.job.id).status == "cancelled"
            except BuildcoordError:
                cancelled = False  # cannot tell: stopping hard is the safe side
        self.lost = str(exc)
        self.on_lost(str(exc), cancelled)
