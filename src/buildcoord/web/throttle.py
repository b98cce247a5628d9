"""Slowing down guessing: an address that failed to authenticate too often lately waits.

Per process and in memory: each address keeps the times of its last ``limit`` failures; once
it has ``limit`` within ``window`` seconds, its requests get 429 with Retry-After (before any
token is looked at) until the oldest of them is ``window`` seconds old. Other addresses go on
as before. At most ``max_addresses`` are remembered (the least recent dropped), so a flood of
addresses costs bounded memory. Behind a reverse proxy, uvicorn takes the client's address
from X-Forwarded-For when the proxy is among uvicorn's ``FORWARDED_ALLOW_IPS`` (default 127.0.0.1).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any


class FailedAuthThrottle:
    """Recent authentication failures per client address."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds the address must wait, or None when it may try now."""
        if self.limit <= 0:
            return None
        with self._lock:
            failures = self._failures.get(address)
            if failures is None or len(failures) < self.limit:
                return None
            wait = failures[0] + self.window - self.clock()
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, address: str) -> None:
        """Count one failed authentication of the address."""
        if self.limit <= 0:
            return
        with self._lock:
            failures = self._failures.pop(address, None)
            if failures is None:
                failures = deque(maxlen=self.limit)
            failures.append(self.clock())
            self._failures[address] = failures
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)


def client_address(scope: Mapping[str, Any]) -> str:
    """The request's client address ('' when the server does not know it)."""
    client = scope.get("client")
    if isinstance(client, (tuple, list)) and client:
        return str(client[0])
    return ""
