"""What each dashboard panel shows, gathered from the services as the viewer.

One function per panel, returning the template's context; the views render it whole in a
page or alone as a fragment when the panel refreshes. Only service calls: no SQL here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from buildcoord.errors import NotFound
from buildcoord.models import FleetSample, Job, JobForecast, Server
from buildcoord.services.coordinator import Coordinator
from buildcoord.web.pages.charts import Series, line_chart
from buildcoord.web.pages.session import Viewer

PAGE_SIZE = 50
"""Servers, jobs and messages shown per page of a panel."""

RECENT_BUILDS = 20


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


def _running(
    coordinator: Coordinator, viewer: Viewer, forecasts: dict[int, JobForecast] | None = None
) -> list[Running]:
    """The running builds; ``forecasts``: the queue's, when the caller has it already."""
    now = coordinator.clock.now()
    jobs = coordinator.queue.list_jobs(status="running", limit=1000, by=viewer.principal)
    if forecasts is None:  # their time left alone: no need to simulate the queue
        forecasts = coordinator.prediction.running_forecasts(jobs)
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
    finished = [
        job
        for status in ("succeeded", "failed")
        for job in coordinator.queue.list_jobs(
            status=status, limit=RECENT_BUILDS, by=viewer.principal
        )
    ]
    finished.sort(key=lambda job: (job.finished_at or job.created_at, job.id), reverse=True)
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
    forecasts: dict[int, JobForecast] | None = coordinator.prediction.forecast() if queued else None
    order = {job_id: n for n, job_id in enumerate(forecasts or {})}
    queued.sort(key=lambda job: (order.get(job.id, len(order)), job.id))
    return {
        "running": _running(coordinator, viewer, forecasts),
        "queued": [(job, (forecasts or {}).get(job.id)) for job in queued[:PAGE_SIZE]],
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


LOG_PAGE = 500
"""Log entries per page of the job page's log (a long log is read a page at a time)."""

MANIFEST_SHOWN = 200
"""Files of a manifest listed on the job page."""


def job(coordinator: Coordinator, viewer: Viewer, *, job_id: int, **_: Any) -> dict[str, Any]:
    """One job: where it stands, its forecast, the first page of its log, its manifest, the
    comparison verdicts it is part of."""
    by = viewer.principal
    found = coordinator.queue.get(job_id, by=by)
    forecast = None
    if found.status in ("queued", "running"):
        forecast = coordinator.prediction.forecast().get(job_id)
    entries = coordinator.logs.entries(job_id, limit=LOG_PAGE, by=by)
    try:
        artifacts = coordinator.artifacts.get(job_id, by=by)
        manifest = coordinator.artifacts.manifest(job_id, by=by)
    except NotFound:
        artifacts, manifest = None, []
    return {
        "job": found,
        "forecast": forecast,
        "log": log_page(found, entries),
        "artifacts": artifacts,
        "manifest": manifest[:MANIFEST_SHOWN],
        "manifest_total": len(manifest),
        "comparisons": coordinator.comparisons.list_comparisons(job=job_id, by=by),
    }


def log_page(found: Job, entries: Sequence[Any]) -> dict[str, Any]:
    """A page of log entries and how the page goes on: ``more`` (a full page: the next one
    when scrolled to), ``follow`` (the job runs: look again each second) or neither."""
    after = entries[-1].id if entries else 0
    return {
        "job": found,
        "entries": entries,
        "after": after,
        "more": len(entries) >= LOG_PAGE,
        "follow": len(entries) < LOG_PAGE and found.status in ("queued", "running"),
    }


def log_more(
    coordinator: Coordinator, viewer: Viewer, *, job_id: int, after: int
) -> dict[str, Any]:
    """The log entries after a cursor, a page of them."""
    found = coordinator.queue.get(job_id, by=viewer.principal)
    entries = coordinator.logs.entries(job_id, after_id=after, limit=LOG_PAGE, by=viewer.principal)
    page = log_page(found, entries)
    if not entries:
        page["after"] = after
    return page


@dataclass(frozen=True, slots=True)
class BranchView:
    """A branch with its last good build and its next build's predicted duration."""

    branch: Any
    last_good: Any | None
    estimate: Any | None


def branches(coordinator: Coordinator, viewer: Viewer, **_: Any) -> dict[str, Any]:
    """Every branch: last good build and tag, next scheduled run, prediction band, switches."""
    by = viewer.principal
    shown = []
    for branch in coordinator.branches.list_branches(by=by):
        try:
            last_good = coordinator.rollback.last_good(branch.name, by=by)
        except NotFound:
            last_good = None
        try:
            estimate = coordinator.prediction.duration(branch.name, by=by)
        except NotFound:
            estimate = None
        shown.append(BranchView(branch, last_good, estimate))
    health = {each.branch: each for each in coordinator.health.fleet(by=by).branches}
    return {"branches": shown, "health": health}


def _series(samples: Sequence[FleetSample]) -> dict[str, Any]:
    return {
        "success": line_chart(
            "Success rate",
            [Series("passed / finished", "ok", [(s.at, s.success_rate) for s in samples])],
            unit="%",
            top=1.0,
        ),
        "durations": line_chart(
            "Mean duration of passed builds",
            [Series("mean", "info", [(s.at, s.mean_duration_seconds) for s in samples])],
            unit="s",
        ),
        "queue": line_chart(
            "Queue depth",
            [
                Series("queued", "warn", [(s.at, s.queued) for s in samples]),
                Series("running", "info", [(s.at, s.running) for s in samples]),
                Series("blocked", "muted", [(s.at, s.blocked) for s in samples]),
            ],
        ),
        "servers": line_chart(
            "Servers online",
            [
                Series("online", "ok", [(s.at, s.servers_online) for s in samples]),
                Series("total", "muted", [(s.at, s.servers_total) for s in samples]),
            ],
        ),
    }


def trends(
    coordinator: Coordinator, viewer: Viewer, *, window: str = "24h", **_: Any
) -> dict[str, Any]:
    """Success rate, durations, queue depth and servers online over 24 hours or 30 days."""
    if window not in ("24h", "30d"):
        window = "24h"
    samples = coordinator.trends.samples(window, by=viewer.principal)
    return {"window": window, "samples": len(samples), "charts": _series(samples)}


PANELS: dict[str, Callable[..., dict[str, Any]]] = {
    "overview": overview,
    "servers": servers,
    "queue": queue,
    "alerts": alerts,
    "messages": messages,
    "branches": branches,
    "trends": trends,
}
