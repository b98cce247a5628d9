"""The change feed: one reader per coordinator process follows the event log and hands what
is new to the process's subscribers (the live agent sessions; later the dashboard and the
health monitor), so that no connection polls the database on its own.

The events table is the source of truth. The reader looks for new rows as soon as this
process commits a transaction that may have appended some (``Store.on_event_commits``), and
every ``follow_seconds`` (0.1 s) for the changes other processes make: coordinators sharing
a PostgreSQL, or ``serve --workers N`` sharing SQLite, see each other within that. It runs
only while someone subscribes; each look is one indexed read, whatever the number of
subscribers.

The reader also moves ``token_revocations`` when it reads a revocation (another process's
included), and says when it last looked (``following``): the token cache trusts an entry
longer while the reader follows, since a revocation anywhere then reaches it within a look.

Event ids are handed out when a row is inserted, not when its transaction commits: on
PostgreSQL a reader can see id 12 before id 11 commits. The reader therefore remembers the
ids it has delivered above its cursor and waits up to ``GAP_SECONDS`` for a hole to fill
(a rolled-back insert leaves one for good) before it moves past it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from buildcoord.clock import Clock
from buildcoord.models import Event
from buildcoord.services.streaks import FailureStreak
from buildcoord.store import Store
from buildcoord.store.events import Revocations, token_revocations

log = logging.getLogger("buildcoord.feed")

FOLLOW_SECONDS = 0.1
"""How often the reader looks for other processes' changes."""

GAP_SECONDS = 2.0
"""How long a hole in the event ids is waited for before the reader moves past it."""

BATCH = 500
"""The most events one look reads."""

FRESH_SECONDS = 2.0
"""A reader that has not finished a look for this long is not following (a lost database)."""

RETRY_SECONDS = 1.0
"""How long the reader waits after a failed read (a lost database) before the next look."""

Subscriber = Callable[[Sequence[Event]], None]
"""Called on the reader's thread after each look, with the new events (often none: a look is
also the subscribers' clock tick). Must be quick and must not block on the database for
long: every other subscriber waits."""


class ChangeFeed:
    """Follows the event log for this process; subscribers get each new event once, in order."""

    def __init__(self, store: Store, clock: Clock, *, follow_seconds: float = FOLLOW_SECONDS):
        self.store = store
        self.clock = clock
        self.follow_seconds = follow_seconds
        self._lock = threading.Lock()
        self._subscribers: tuple[Subscriber, ...] = ()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._cursor = 0  # every event up to here was delivered
        self._above: set[int] = set()  # delivered ids above the cursor (past a hole)
        self._hole_since: float | None = None
        self.epoch = 0  # counts the reader's starts: a restart skips what happened meanwhile
        self._looked_at: float | None = None  # monotonic time of the last look that succeeded

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Deliver every event appended from now on to ``subscriber``; return what stops it.

        The first subscriber starts the reader thread; it ends when the last one leaves.
        """
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)
            if self._thread is None:
                self._cursor = self.store.last_event_id()
                self._above.clear()
                self._hole_since = None
                self._looked_at = None
                self.epoch += 1
                self._thread = threading.Thread(
                    target=self._run, name="buildcoord-feed", daemon=True
                )
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                kept = list(self._subscribers)
                if subscriber in kept:
                    kept.remove(subscriber)
                self._subscribers = tuple(kept)
            self._wake.set()

        return unsubscribe

    @property
    def running(self) -> bool:
        """Whether the reader thread is following the log."""
        return self._thread is not None

    def following(self) -> bool:
        """Whether the reader is running and finished a look within ``FRESH_SECONDS``."""
        looked = self._looked_at
        return (
            self._thread is not None
            and looked is not None
            and self.clock.monotonic() - looked < FRESH_SECONDS
        )

    def _run(self) -> None:
        stop_listening = self.store.on_event_commits(self._wake.set)
        reads = FailureStreak(log, "change feed: reading the event log")
        try:
            while True:
                with self._lock:
                    subscribers = self._subscribers
                    if not subscribers:
                        self._thread = None
                        return
                try:
                    events = self._look()
                    if any(event.kind in Revocations.KINDS for event in events):
                        token_revocations.bump()
                    self._looked_at = self.clock.monotonic()
                    reads.succeeded()
                except Exception as exc:  # a lost database: the next look catches up
                    reads.failed(exc)
                    self._wake.wait(RETRY_SECONDS)
                    self._wake.clear()
                    continue
                for subscriber in subscribers:
                    try:
                        subscriber(events)
                    except Exception:
                        log.exception("change feed: a subscriber failed")
                if len(events) < BATCH:
                    self._wake.wait(self.follow_seconds)
                    self._wake.clear()
        finally:
            stop_listening()

    def _look(self) -> list[Event]:
        """Read what is new since the cursor; move the cursor over what is delivered."""
        rows = self.store.list_events(after_id=self._cursor, limit=BATCH)
        fresh = [event for event in rows if event.id not in self._above]
        self._above.update(event.id for event in fresh)
        while self._above:
            following = self._cursor + 1
            if following in self._above:
                self._above.discard(following)
                self._cursor = following
                self._hole_since = None
                continue
            now = self.clock.monotonic()
            if self._hole_since is None:
                self._hole_since = now
            if now - self._hole_since < GAP_SECONDS:
                break
            self._cursor = min(self._above) - 1  # the hole stays empty: move past it
            self._hole_since = None
        return fresh
