"""The change feed: every new event once, in order, including one whose id was handed out
before a later event's but committed after it (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from buildcoord.clock import FakeClock
from buildcoord.models import Event
from buildcoord.services.feed import ChangeFeed
from buildcoord.store import Store
from buildcoord.store.engine import write_transaction
from buildcoord.store.events import append_event


class Collected:
    """The events a subscriber got, with a bounded wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []

    def __call__(self, events: Sequence[Event]) -> None:
        with self._lock:
            self.events.extend(events)

    def kinds(self) -> list[str]:
        with self._lock:
            return [event.kind for event in self.events]

    def wait_for(self, kinds: list[str], timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while self.kinds() != kinds:
            assert time.monotonic() < end, f"got {self.kinds()}, expected {kinds}"
            time.sleep(0.02)


@pytest.fixture
def follow(store: Store, clock: FakeClock) -> Iterator[Callable[[], Collected]]:
    """Subscribe a collector to a fresh feed; unsubscribed after the test."""
    stops: list[Callable[[], None]] = []

    def subscribe() -> Collected:
        collected = Collected()
        stops.append(ChangeFeed(store, clock).subscribe(collected))
        return collected

    yield subscribe
    for stop in stops:
        stop()


def append(store: Store, kind: str) -> None:
    with write_transaction(store.engine) as conn:
        append_event(conn, at=1_700_000_000.0, actor="test", kind=kind, subject="test:1")


def test_the_feed_delivers_each_new_event_once_in_order_and_none_from_before(
    store: Store, follow: Callable[[], Collected]
) -> None:
    append(store, "test.before")
    collected = follow()

    for kind in ("test.one", "test.two", "test.three"):
        append(store, kind)

    collected.wait_for(["test.one", "test.two", "test.three"])
    time.sleep(0.3)
    assert collected.kinds() == ["test.one", "test.two", "test.three"]


def test_an_event_committed_after_a_later_one_is_still_delivered(
    store: Store, follow: Callable[[], Collected]
) -> None:
    if store.dialect == "sqlite":
        pytest.skip("SQLite commits one writer at a time, so its event ids commit in order")
    collected = follow()

    with write_transaction(store.engine) as slow:
        append_event(slow, at=1_700_000_000.0, actor="test", kind="test.slow", subject="test:1")
        append(store, "test.fast")  # a later id, committed first
        collected.wait_for(["test.fast"])

    collected.wait_for(["test.fast", "test.slow"])
