"""Retrying calls to the coordinator while it is unreachable (a restart, a network blip)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from buildcoord.errors import Unavailable

T = TypeVar("T")

log = logging.getLogger("buildcoord.agent")

FIRST_DELAY = 0.2
DELAY_CAP = 2.0


def delays(first: float = FIRST_DELAY, *, cap: float = DELAY_CAP) -> Iterator[float]:
    """0.2, 0.4, 0.8, ... seconds, doubling up to the cap, then the cap forever."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * 2)


def call_with_retry(
    call: Callable[[], T],
    *,
    what: str,
    patience: float | None = None,
    stop: threading.Event | None = None,
) -> T:
    """Call until it does not raise Unavailable; other errors pass through at once.

    Gives up (re-raising the last Unavailable) after ``patience`` seconds, or when ``stop``
    is set. One warning is logged when the coordinator first goes away, one when it is back,
    so an outage of minutes does not flood the agent's log.
    """
    started = time.monotonic()
    warned = False
    for delay in delays():
        try:
            result = call()
        except Unavailable as exc:
            waited = time.monotonic() - started
            if (patience is not None and waited + delay > patience) or (
                stop is not None and stop.is_set()
            ):
                raise
            if not warned:
                log.warning("%s: coordinator unreachable, retrying: %s", what, exc)
                warned = True
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            continue
        if warned:
            log.warning("%s: coordinator reachable again", what)
        return result
    raise AssertionError("unreachable")  # pragma: no cover - delays() never ends
