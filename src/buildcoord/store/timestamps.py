"""Conversion between aware datetimes and the epoch seconds stored in every time column."""

from __future__ import annotations

from datetime import UTC, datetime


def to_epoch(moment: datetime) -> float:
    """Return epoch seconds for an aware datetime."""
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Return the UTC datetime for epoch seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def from_epoch_or_none(seconds: float | None) -> datetime | None:
    """Like from_epoch, passing None through."""
    return None if seconds is None else from_epoch(seconds)
