"""Dashboard pages, the panels' fragments, and the operators' actions.

A page is rendered whole on the server (first paint needs no script); each panel on it then
asks for its fragment again when the stream says it changed. An action answers an htmx
request with its panel re-rendered (an error shown in it), a plain form with a redirect back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from buildcoord.errors import BuildcoordError, InvalidInput, NotFound
from buildcoord.services.coordinator import Coordinator
from buildcoord.web.pages import panels
from buildcoord.web.pages.render import NAVIGATION, SECURITY_HEADERS, render
from buildcoord.web.pages.session import ActorDep, Viewer, ViewerDep, form, safe_next
from buildcoord.web.schemas import Cursor, RowId

router = APIRouter(include_in_schema=False)

PAGES = NAVIGATION

MAX_FILTER = 200


def _coordinator(request: Request) -> Coordinator:
    found: Coordinator = request.app.state.coordinator
    return found


def _options(request: Request) -> dict[str, Any]:
    """A panel's query options (filter text, status, page), bounded and checked."""
    query = request.query_params
    options: dict[str, Any] = {}
    for name in ("q", "status", "window"):
        value = query.get(name, "")
        if len(value) > MAX_FILTER:
            raise InvalidInput(f"{name} is longer than {MAX_FILTER} characters")
        if value:
            options[name] = value
    raw_page = query.get("page", "1")
    if not _ascii_digits(raw_page, 7) or not 1 <= int(raw_page) <= 1_000_000:
        raise InvalidInput("page must be a whole number from 1")
    options["page"] = int(raw_page)
    return options


def _ascii_digits(text: str, most: int) -> bool:
    """Whether text is 1 to ``most`` of the digits 0-9 (str.isdigit also takes '²', which int()
    refuses)."""
    return 0 < len(text) <= most and all("0" <= char <= "9" for char in text)


def _gather(request: Request, viewer: Viewer, panel: str) -> dict[str, Any]:
    return panels.PANELS[panel](_coordinator(request), viewer, **_options(request))


def _page_route(path: str, panel: str, title: str) -> Callable[..., Any]:
    async def page(request: Request, viewer: ViewerDep) -> Response:
        context = await run_in_threadpool(_gather, request, viewer, panel)
        return render(
            request,
            f"{panel}.html",
            viewer=viewer,
            csrf=viewer.csrf,
            title=title,
            panel=panel,
            query=request.url.query,
            **context,
        )

    page.__name__ = f"{panel}_page"
    return page


for _path, (_panel, _title) in PAGES.items():
    router.add_api_route(_path, _page_route(_path, _panel, _title), methods=["GET"])


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: RowId, viewer: ViewerDep) -> Response:
    """One job: its state, forecast, log (followed while it runs), manifest and verdicts."""
    context = await run_in_threadpool(panels.job, _coordinator(request), viewer, job_id=job_id)
    return render(
        request,
        "job.html",
        viewer=viewer,
        csrf=viewer.csrf,
        title=f"Job {job_id}",
        panel="job",
        query="",
        **context,
    )


@router.get("/ui/jobs/{job_id}/panel")
async def job_fragment(request: Request, job_id: RowId, viewer: ViewerDep) -> Response:
    """The job page's state panel alone, for a refresh."""
    context = await run_in_threadpool(panels.job, _coordinator(request), viewer, job_id=job_id)
    return render(request, "panels/job.html", viewer=viewer, csrf=viewer.csrf, **context)


@router.get("/ui/jobs/{job_id}/log")
async def log_fragment(
    request: Request, job_id: RowId, viewer: ViewerDep, after: Cursor = 0
) -> Response:
    """The log entries after a cursor: a page, and the element that fetches the next."""
    context = await run_in_threadpool(
        panels.log_more, _coordinator(request), viewer, job_id=job_id, after=after
    )
    return render(request, "panels/log_entries.html", log=context)


@router.get("/ui/panel/{panel}")
async def fragment(request: Request, panel: str, viewer: ViewerDep) -> Response:
    """One panel alone, for a refresh."""
    if panel not in panels.PANELS:
        raise NotFound(f"no panel {panel!r}")
    context = await run_in_threadpool(_gather, request, viewer, panel)
    return render(
        request,
        f"panels/{panel}.html",
        viewer=viewer,
        csrf=viewer.csrf,
        query=request.url.query,
        **context,
    )


async def _act(
    request: Request, viewer: Viewer, panel: str, action: Callable[[], object]
) -> Response:
    """Run an action as the viewer; answer with the panel (htmx) or a redirect back.

    The panel's query is checked first: a request refused for it has done nothing.
    """
    if request.headers.get("hx-request") == "true":
        _options(request)
    error = None
    status = 200
    try:
        await run_in_threadpool(action)
    except BuildcoordError as exc:
        error, status = str(exc), exc.status
    if request.headers.get("hx-request") == "true":
        context = await run_in_threadpool(_gather, request, viewer, panel)
        return render(
            request,
            f"panels/{panel}.html",
            status_code=200,
            viewer=viewer,
            csrf=viewer.csrf,
            query="",
            error=error,
            **context,
        )
    back = safe_next(_referer_path(request))
    if error is not None:
        return render(
            request,
            "error.html",
            status_code=status,
            viewer=viewer,
            csrf=viewer.csrf,
            error=error,
            back=back,
            panel=panel,
            title="Error",
        )
    return RedirectResponse(back, status_code=303, headers=SECURITY_HEADERS)


def _referer_path(request: Request) -> str:
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}"
    return referer[len(origin) :] if referer.startswith(origin + "/") else "/"


@router.post("/ui/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: RowId, viewer: ActorDep) -> Response:
    """Cancel a job that has not finished."""
    services = _coordinator(request)
    return await _act(
        request,
        viewer,
        "queue",
        lambda: services.queue.cancel(
            job_id, reason="cancelled on the dashboard", by=viewer.principal
        ),
    )


@router.post("/ui/jobs/{job_id}/retry")
async def retry_job(request: Request, job_id: RowId, viewer: ActorDep) -> Response:
    """Queue a failed or cancelled job again."""
    services = _coordinator(request)
    return await _act(
        request, viewer, "queue", lambda: services.queue.retry(job_id, by=viewer.principal)
    )


@router.post("/ui/branches/auto-build")
async def set_auto_build(request: Request, viewer: ActorDep) -> Response:
    """Turn a branch's building of new commits on or off."""
    fields = await form(request)
    services = _coordinator(request)
    return await _act(
        request,
        viewer,
        "branches",
        lambda: services.branches.update(
            fields.get("branch", ""),
            auto_build=fields.get("auto_build") == "on",
            by=viewer.principal,
        ),
    )


@router.post("/ui/jobs/{job_id}/priority")
async def set_job_priority(request: Request, job_id: RowId, viewer: ActorDep) -> Response:
    """Change a waiting job's priority."""
    fields = await form(request)
    services = _coordinator(request)

    def change() -> None:
        raw = fields.get("priority", "")
        if not _ascii_digits(raw, 2):
            raise InvalidInput(f"priority: {raw[:20]!r} is not a whole number from 1 to 10")
        services.queue.set_priority(job_id, int(raw), by=viewer.principal)

    return await _act(request, viewer, "queue", change)


@router.post("/ui/alerts/{alert_id}/ack")
async def acknowledge_alert(request: Request, alert_id: RowId, viewer: ActorDep) -> Response:
    """Acknowledge an open alert: no more reminders until it resolves."""
    services = _coordinator(request)
    return await _act(
        request,
        viewer,
        "alerts",
        lambda: services.alerts.acknowledge(alert_id, by=viewer.principal),
    )


@router.post("/ui/alerts/silence")
async def silence_alerts(request: Request, viewer: ActorDep) -> Response:
    """Silence a rule (or one subject of it) for some hours."""
    fields = await form(request)
    services = _coordinator(request)

    def silence() -> None:
        hours = fields.get("hours", "2")
        try:
            seconds = float(hours) * 3600
        except ValueError as exc:
            raise InvalidInput(f"hours: {hours!r} is not a number") from exc
        services.alerts.silence(
            fields.get("rule", ""),
            fields.get("subject") or None,
            seconds=seconds,
            comment="silenced on the dashboard",
            by=viewer.principal,
        )

    return await _act(request, viewer, "alerts", silence)


@router.post("/ui/messages/{message_id}/read")
async def mark_message_read(request: Request, message_id: RowId, viewer: ActorDep) -> Response:
    """Mark one message read."""
    services = _coordinator(request)
    return await _act(
        request,
        viewer,
        "messages",
        lambda: services.messages.mark_read(message_id, by=viewer.principal),
    )


@router.post("/ui/messages/read-all")
async def mark_all_messages_read(request: Request, viewer: ActorDep) -> Response:
    """Mark every message read."""
    services = _coordinator(request)
    return await _act(
        request, viewer, "messages", lambda: services.messages.mark_all_read(by=viewer.principal)
    )
