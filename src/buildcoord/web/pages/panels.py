"""What each dashboard panel shows, gathered from the services as the viewer.

One function per panel, returning the template's context; the views render it whole in a
page or alone as a fragment when the panel refreshes. Only service calls: no SQL here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from buildcoord.models import Event, Job, JobForecast, Server
from buildcoord.services.coordinator import Coordinator
from buildcoord.web.pages.session import Viewer

PAGE_SIZE = 50
"""Servers, jobs and messages shown per page of a panel."""

RECENT_BUILDS = 20

PANELS_OF_EVENT = {
    "job": ("overview", "queue"),
    "server": ("overview", "servers"),
    "alert": ("overview", "alerts"),
    "message": ("overview", "messages"),
    "branch": ("overview",),
}
"""Which panels an event's kind (its part before the dot) changes."""


def panels_changed_by(events: Iterable[Event]) -> set[str]:
    """The panels whose content the events may have changed."""
    changed: set[str] = set()
    for event in events:
        changed.update(PANELS_OF_EVENT.get(event.kind.partition(".")[0], ()))
    return changed


@dataclass(frozen=True, slots=True)
class Running:
    """A running build with its progress against its predicted length."""

    job: Job
    elapsed: float
    remaining: float | None
    fraction: float | None
    """Elapsed / predicted (0..1), None with no prediction."""


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of a long list a panel shows."""

    number: int
    size: int
    total: int

    @property
    def count(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.size))

    def of(self, items: Sequence[Any]) -> Sequence[Any]:
        """This page's items."""
        start = (self.number - 1) * self.size
        return items[start : start + self.size]


def _page(number: int, total: int) -> Page:
    page = Page(1, PAGE_SIZE, total)
    return Page(min(max(1, number), page.count), PAGE_SIZE, total)


def _running(coordinator: Coordinator, viewer: Viewer) -> list[Running]:
    now = coordinator.clock.now()
    jobs = coordinator.queue.list_jobs(status="running", limit=1000, by=viewer.principal)
    forecasts = coordinator.prediction.forecast() if jobs else {}
    found = []
    for job in sorted(jobs, key=lambda each: each.id):
        elapsed = (now - job.started_at).total_seconds() if job.started_at else 0.0
        forecast = forecasts.get(job.id)
        remaining = forecast.expected_remaining_seconds if forecast else None
        fraction = None
        if remaining is not None and elapsed + remaining > 0:
            fraction = min(1.0, elapsed / (elapsed + remaining))
        found.append(Running(job, max(0.0, elapsed), remaining, fraction))
    return found


def overview(coordinator: Coordinator, viewer: Viewer, **_: Any) -> dict[str, Any]:
    """Servers online, success rate, queue depth, open alerts, the running builds."""
    fleet = coordinator.health.fleet(by=viewer.principal)
    recent = coordinator.queue.list_jobs(status="all", limit=200, by=viewer.principal)
    finished = [job for job in recent if job.finished_at is not None]
    finished.sort(key=lambda job: (job.finished_at, job.id), reverse=True)
    return {
        "fleet": fleet,
        "running": _running(coordinator, viewer),
        "recent": finished[:RECENT_BUILDS],
        "updated_at": coordinator.clock.now(),
    }


def _matches(server: Server, text: str, status: str) -> bool:
    if status and server.status != status:
        return False
    if not text:
        return True
    return text in server.name or any(text in label for label in server.labels)


def servers(
    coordinator: Coordinator,
    viewer: Viewer,
    *,
    q: str = "",
    status: str = "",
    page: int = 1,
    **_: Any,
) -> dict[str, Any]:
    """Every server (filtered by name or label and status), a page at a time."""
    found = coordinator.servers.list_servers(by=viewer.principal)
    total = len(found)
    shown = [server for server in found if _matches(server, q, status)]
    paging = _page(page, len(shown))
    return {
        "servers": paging.of(shown),
        "total": total,
        "matching": len(shown),
        "paging": paging,
        "q": q,
        "status": status,
        "statuses": ("online", "busy", "stale", "offline"),
    }


def queue(coordinator: Coordinator, viewer: Viewer, **_: Any) -> dict[str, Any]:
    """Running jobs with time left, queued ones in claim order with forecasts, blocked ones."""
    by = viewer.principal
    queued = coordinator.queue.list_jobs(status="queued", limit=1000, by=by)
    blocked = coordinator.queue.list_jobs(status="blocked", limit=1000, by=by)
    forecasts: dict[int, JobForecast] = coordinator.prediction.forecast() if queued else {}
    order = {job_id: n for n, job_id in enumerate(forecasts)}
    queued.sort(key=lambda job: (order.get(job.id, len(order)), job.id))
    return {
        "running": _running(coordinator, viewer),
        "queued": [(job, forecasts.get(job.id)) for job in queued[:PAGE_SIZE]],
        "queued_total": len(queued),
        "blocked": blocked[:PAGE_SIZE],
        "blocked_total": len(blocked),
    }


def alerts(coordinator: Coordinator, viewer: Viewer, **_: Any) -> dict[str, Any]:
    """Open alerts, the last resolved ones, silences in force."""
    by = viewer.principal
    found = coordinator.alerts.list_alerts(include_resolved=True, limit=100, by=by)
    return {
        "open": [alert for alert in found if alert.resolved_at is None],
        "resolved": [alert for alert in found if alert.resolved_at is not None][:20],
        "silences": coordinator.alerts.list_silences(by=by),
    }


def messages(
    coordinator: Coordinator, viewer: Viewer, *, page: int = 1, **_: Any
) -> dict[str, Any]:
    """Messages, unread first marked, a page at a time."""
    found = coordinator.messages.list_messages(limit=1000, by=viewer.principal)
    paging = _page(page, len(found))
    return {
        "messages": paging.of(found),
        "unread": sum(1 for message in found if not message.read),
        "paging": paging,
    }


PANELS: dict[str, Callable[..., dict[str, Any]]] = {
    "overview": overview,
    "servers": servers,
    "queue": queue,
    "alerts": alerts,
    "messages": messages,
}
