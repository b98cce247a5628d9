"""Logging a failure that repeats every second (a database away for a minute) without
flooding the log: the first of a streak with its traceback, then one line a minute with the
count, and one line when it ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REPEAT_SECONDS = 60.0
"""How often a streak that goes on is mentioned again."""


class FailureStreak:
    """The failures of one background task (a maintenance pass, the change feed's reads)."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.what = what
        self.monotonic = monotonic
        self.count = 0
        self._said_at = 0.0

    def failed(self, exc: BaseException) -> None:
        """Log a failure (call from an ``except`` block)."""
        self.count += 1
        now = self.monotonic()
        if self.count == 1:
            self.log.error("%s failed; retrying", self.what, exc_info=exc)
            self._said_at = now
        elif now - self._said_at >= REPEAT_SECONDS:
            self.log.error("%s still failing (%d times): %s", self.what, self.count, exc)
            self._said_at = now

    def succeeded(self) -> None:
        """End a streak, saying so if there was one."""
        if self.count:
            self.log.warning("%s works again after %d failures", self.what, self.count)
            self.count = 0
