"""The agent's live session: an event stream held open so that the coordinator notices a dead
agent within seconds (the stream drops) and can tell a live one of work to claim, a build to
cancel, or orders to carry out.

When the stream drops, the agent reconnects after 0.2 s, 0.5 s, 1 s, then every second:
the coordinator requeues an agent's jobs when it has not come back within its grace (3 s),
so the first retries must be quick. A coordinator restart drops the stream too; the
reconnecting loop simply waits it out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from buildcoord.client import Client
from buildcoord.errors import BuildcoordError, Unavailable

log = logging.getLogger("buildcoord.agent")

RECONNECT_DELAYS = (0.2, 0.5, 1.0)

# Called for each ``cancel`` event: (job id, reason).
OnCancel = Callable[[int, str | None], None]


class SessionKeeper:
    """Holds the session open from a thread, reconnecting when it drops."""

    def __init__(
        self,
        client: Client,
        server: str,
        on_cancel: OnCancel,
        on_orders: Callable[[], None] | None = None,
        on_work: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.server = server
        self.on_cancel = on_cancel
        self.on_orders = on_orders
        self.on_work = on_work  # a job to claim may be waiting: also on every (re)connect
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="buildcoord-session", daemon=True)

    def start(self) -> None:
        """Open the session."""
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Close the session (its thread notices at the next event or keepalive, within 5 s)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
            except Unavailable as exc:
                if failures == 0 and not self._stop.is_set():
                    log.warning("session with the coordinator dropped: %s", exc)
            except BuildcoordError as exc:
                log.warning("session refused by the coordinator: %s", exc)
            except Exception:  # a bug or a garbled stream must not end the session for good
                log.exception("session failed")
            if self.connected.is_set():
                failures = 0
            self.connected.clear()
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            self._stop.wait(delay)

    def _listen(self) -> None:
        for event, data in self.client.session_events(self.server):
            if event == "hello":
                if not self.connected.is_set():
                    log.info("session with the coordinator open")
                self.connected.set()
                if self.on_work is not None:  # work queued while it was away is told no more
                    self.on_work()
            elif event == "work" and self.on_work is not None:
                self.on_work()
            elif event == "cancel" and isinstance(data.get("job_id"), int):
                reason = data.get("reason")
                self.on_cancel(data["job_id"], reason if isinstance(reason, str) else None)
            elif event == "orders" and self.on_orders is not None:
                self.on_orders()
            if self._stop.is_set():
                return
