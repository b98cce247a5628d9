"""The seed's value forms: its three timestamp forms, its status words, its folder names."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from buildcoord.models import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP

SECONDS_FORM = "%Y-%m-%dT%H:%M:%SZ"
"""What the seed's scripts write (``date -u +%Y-%m-%dT%H:%M:%SZ``), and what export writes."""

_MINUTES = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")

JOB_STATUSES = {
    "queued": "queued",
    "pending": "queued",
    "completed": "succeeded",
    "complete": "succeeded",
    "success": "succeeded",
    "succeeded": "succeeded",
    "done": "succeeded",
    "failed": "failed",
    "failure": "failed",
    "error": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
"""Seed job status words (any case) and what each is here; ``running`` and anything else are
imported as cancelled, with the reason (see reader.job_status)."""

EXPORTED_STATUSES = {
    "queued": "queued",
    "blocked": "queued",
    "running": "running",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}
"""Our job statuses as the seed's page and scripts count them (they know queued, running,
completed and failed)."""


class BadValue(ValueError):
    """A value of the wrong type or form: the entry holding it is skipped."""


def seed_time(value: object, *, what: str) -> float:
    """Epoch seconds of a seed timestamp in any of its three forms: ``…T…Z`` (seconds or
    microseconds, or an offset) and ``YYYY-MM-DD HH:MM``, which the seed wrote in UTC."""
    if not isinstance(value, str):
        raise BadValue(f"{what} is {_shown(value)}, not a timestamp")
    text = value.strip()
    try:
        if _MINUTES.fullmatch(text):
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        elif _ISO.fullmatch(text):
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            raise BadValue(f"{what} {_shown(value)} is in none of the seed's timestamp forms")
    except BadValue:
        raise
    except ValueError:  # the form, but no such date or time (month 13, hour 25)
        raise BadValue(f"{what} {_shown(value)} is no date there is") from None
    seconds = parsed.timestamp()
    if not EARLIEST_TIMESTAMP <= seconds <= LATEST_TIMESTAMP:
        raise BadValue(f"{what} {_shown(value)} lies outside the years 2000 to 2099")
    return seconds


def optional_time(value: object, *, what: str) -> float | None:
    """seed_time, with null (and an empty string) as no time."""
    if value is None or value == "":
        return None
    return seed_time(value, what=what)


def stamp(seconds: float) -> str:
    """A time as the seed's scripts write it (``…T…Z``); with its microseconds, as the seed's
    Python monitor wrote them, when it has any."""
    at = datetime.fromtimestamp(seconds, UTC)
    if at.microsecond:
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return at.strftime(SECONDS_FORM)


def server_folder(name: str) -> str:
    """The folder of a server in the seed's layout, as its scripts name it (``build${ID#build}``):
    build1 for build1, buildci-7 for ci-7."""
    return "build" + name.removeprefix("build")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def shown(value: object) -> str:
    """A value as a note quotes it (at most 60 characters)."""
    return _shown(value)
