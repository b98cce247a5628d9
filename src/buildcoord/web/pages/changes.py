"""Which dashboard panels a change touches: what the live stream tells open pages."""

from __future__ import annotations

from collections.abc import Iterable

from buildcoord.models import Event

PANELS_OF_EVENT = {
    "job": ("overview", "queue"),
    "server": ("overview", "servers"),
    "alert": ("overview", "alerts"),
    "message": ("overview", "messages"),
    "branch": ("overview", "branches"),
    "rollback": ("branches",),
    # An import may bring in servers, jobs, messages and branches' builds at once.
    "legacy": ("overview", "servers", "queue", "messages", "branches"),
    # A repeat changes an alert's count and summary, not how many are open.
    "alert.repeated": ("alerts",),
}
"""Which panels an event's kind changes: by its whole kind, else by its part before the dot."""


def panels_changed_by(events: Iterable[Event]) -> set[str]:
    """The panels whose content the events may have changed."""
    changed: set[str] = set()
    for event in events:
        found = PANELS_OF_EVENT.get(event.kind)
        if found is None:
            found = PANELS_OF_EVENT.get(event.kind.partition(".")[0], ())
        changed.update(found)
    return changed


STREAMED = tuple(sorted({panel for panels in PANELS_OF_EVENT.values() for panel in panels}))
"""Every panel the stream may name."""
