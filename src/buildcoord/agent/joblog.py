"""A job's structured log as the agent writes it: entries queued in order, shipped in batches.

Build output arrives a line at a time, often thousands a second; one HTTP request per line
would throttle the build (its pipe fills while we wait). Lines are queued and a thread
ships them every ``interval`` seconds or every ``batch`` lines, whichever comes first.
While the coordinator is unreachable the queue grows (up to ``MAX_PENDING`` entries, then
output lines are counted and dropped, with a notice) and is shipped when it is back.
When the coordinator refuses the writes (the job is no longer ours: cancelled, re-leased),
everything queued is dropped: nobody may write to a job it does not hold.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from buildcoord.agent.backoff import delays
from buildcoord.client import Client
from buildcoord.errors import BuildcoordError, InvalidInput, Unavailable
from buildcoord.models import LogLevel

log = logging.getLogger("buildcoord.agent")

BATCH_LINES = 200
INTERVAL_SECONDS = 0.5
MAX_PENDING = 100_000
MAX_REQUEST = 2_000  # entries per request, under the coordinator's 5,000


class JobLog:
    """Ships one job's log entries from a thread of its own."""

    def __init__(
        self,
        client: Client,
        job_id: int,
        *,
        server: str,
        fencing_token: int,
        interval: float = INTERVAL_SECONDS,
        batch: int = BATCH_LINES,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.server = server
        self.fencing_token = fencing_token
        self.interval = interval
        self.batch = batch
        self.refused: str | None = None
        self._pending: deque[dict[str, Any]] = deque()
        self._dropped = 0
        self._closing = False
        self._patience_until = float("inf")
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._ship_loop, name="buildcoord-log", daemon=True)

    def start(self) -> None:
        """Start shipping."""
        self._thread.start()

    def output(self, line: str) -> None:
        """Queue one line of build output."""
        self._add({"at": time.time(), "kind": "output", "level": "info", "message": line})

    def event(self, level: LogLevel, message: str, details: dict[str, Any] | None = None) -> None:
        """Queue an event (the agent's own account of the job)."""
        entry: dict[str, Any] = {"at": time.time(), "kind": "event", "level": level}
        entry["message"] = message
        if details:
            entry["details"] = details
        self._add(entry, always=True)

    def close(self, patience: float = 30.0) -> bool:
        """Ship what is queued (retrying for up to patience seconds) and stop; True if all went."""
        with self._wake:
            self._closing = True
            self._patience_until = time.monotonic() + patience
            self._wake.notify()
        self._thread.join(patience + 5.0)
        with self._wake:
            return self.refused is None and not self._pending and not self._thread.is_alive()

    # -- the shipping thread -----------------------------------------------------------------

    def _add(self, entry: dict[str, Any], *, always: bool = False) -> None:
        with self._wake:
            if self.refused is not None:
                return
            if len(self._pending) >= MAX_PENDING and not always:
                self._dropped += 1
                return
            self._pending.append(entry)
            if len(self._pending) >= self.batch:
                self._wake.notify()

    def _take(self) -> list[dict[str, Any]]:
        taken: list[dict[str, Any]] = []
        if self._dropped:
            taken.append(
                {
                    "at": time.time(),
                    "kind": "event",
                    "level": "warning",
                    "message": f"{self._dropped} output lines dropped: the coordinator was "
                    "unreachable for too long to keep them all",
                }
            )
            self._dropped = 0
        while self._pending and len(taken) < MAX_REQUEST:
            taken.append(self._pending.popleft())
        return taken

    def _ship_loop(self) -> None:
        retry = delays()
        while True:
            with self._wake:
                if not self._closing and len(self._pending) < self.batch:
                    self._wake.wait(self.interval)
                batch = self._take()
                closing = self._closing
            if not batch:
                if closing:
                    return
                continue
            try:
                self.client.append_log(
                    self.job_id, batch, server=self.server, fencing_token=self.fencing_token
                )
                retry = delays()
            except Unavailable:
                with self._wake:
                    self._pending.extendleft(reversed(batch))
                    if closing and time.monotonic() >= self._patience_until:
                        log.warning(
                            "job %d: %d log entries not shipped: coordinator unreachable",
                            self.job_id,
                            len(self._pending),
                        )
                        return
                time.sleep(next(retry))
            except InvalidInput as exc:
                # A bug of ours in these entries, not a reason to stop logging the build.
                log.warning("job %d: %d log entries refused: %s", self.job_id, len(batch), exc)
            except BuildcoordError as exc:
                # Not ours any more (or a bad entry): keep nothing, say why once.
                with self._wake:
                    self.refused = str(exc)
                    self._pending.clear()
                log.warning("job %d: the coordinator refused its log: %s", self.job_id, exc)
                return
