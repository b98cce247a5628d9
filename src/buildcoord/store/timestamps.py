"""Conversion between aware datetimes and the epoch seconds stored in every time column.

Reading is total: a stored value a date cannot hold (beyond year 1 to 9999, infinite or NaN,
as written before client times were bounded) is clamped to the nearest date there is, NaN
to the epoch, so that one bad row never turns a whole listing into a 500.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

_FIRST = -62_135_596_800.0  # 0001-01-01T00:00:00Z
_LAST = 253_402_300_799.0  # 9999-12-31T23:59:59Z


def from_epoch(seconds: float) -> datetime:
    """Return the UTC datetime for epoch seconds, clamped into the years 1 to 9999."""
    if not _FIRST <= seconds <= _LAST:
        seconds = 0.0 if math.isnan(seconds) else min(max(seconds, _FIRST), _LAST)
    return datetime.fromtimestamp(seconds, UTC)


def from_epoch_or_none(seconds: float | None) -> datetime | None:
    """Like from_epoch, passing None through."""
    return None if seconds is None else from_epoch(seconds)
