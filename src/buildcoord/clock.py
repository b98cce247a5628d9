"""Time is injected: services read a Clock, tests advance a FakeClock and never sleep.

A clock tells two times: ``now()``, the UTC wall time stored and shown, and ``monotonic()``,
seconds that never go back, for measuring intervals in process (caches, resyncs).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current UTC time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Return seconds from an arbitrary start that never go back (for intervals)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Return the system's monotonic seconds."""
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._monotonic = 1000.0

    def now(self) -> datetime:
        """Return the frozen time."""
        return self._now

    def monotonic(self) -> float:
        """Return the frozen monotonic seconds; they move with advance()."""
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move the clock; a step back moves the wall time only."""
        self._now += timedelta(seconds=seconds)
        self._monotonic += max(0.0, seconds)
