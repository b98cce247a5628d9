"""The FastAPI application: routers under /api/v1 and error mapping, over one Coordinator.

The maintenance loop is not the app's: ``serve`` runs it beside the app (cli/serve.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from buildcoord import __version__
from buildcoord.services.coordinator import Coordinator
from buildcoord.web.errors import ERROR_RESPONSES, install_error_handlers
from buildcoord.web.guard import BodyLimits, RequestGuard
from buildcoord.web.pages import session, stream, views
from buildcoord.web.routes import (
    agents,
    alerts,
    artifacts,
    branches,
    fleet,
    legacy,
    locks,
    logs,
    messages,
    metrics,
    orders,
    prediction,
    queue,
    rollback,
    servers,
    system,
    tokens,
    webhooks,
)
from buildcoord.web.throttle import FailedAuthThrottle

STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    coordinator: Coordinator,
    *,
    shutting_down: Callable[[], bool] | None = None,
) -> FastAPI:
    """Build the app around one Coordinator.

    ``shutting_down`` tells open agent sessions that the coordinator itself is stopping,
    so their closing is not taken for lost agents.
    """
    settings = coordinator.settings
    # The API's description is public by default: it says nothing the source does not, and
    # client authors need it. `api_docs = false` hides /docs, /redoc and /openapi.json.
    app = FastAPI(
        title="buildcoord",
        version=__version__,
        description="Coordinate builds across a fleet of build servers.",
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.state.coordinator = coordinator
    app.state.shutting_down = shutting_down or (lambda: False)
    install_error_handlers(app)
    routers = (
        queue,
        logs,
        servers,
        agents,
        branches,
        locks,
        messages,
        tokens,
        system,
        orders,
        artifacts,
        rollback,
        prediction,
        webhooks,
        alerts,
        fleet,
        legacy,
    )
    for module in routers:
        app.include_router(module.router, prefix="/api/v1", responses=ERROR_RESPONSES)
    app.include_router(metrics.router)  # /metrics, where Prometheus looks
    # The dashboard: pages at /, their fragments and live stream under /ui, static files.
    for pages in (session, views, stream):
        app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static")

    @app.exception_handler(session.LoginRequired)
    async def to_login(request: Request, exc: session.LoginRequired) -> Response:
        return session.login_redirect(request, exc.next_path)

    limits = BodyLimits(default=settings.max_request_bytes, upload=settings.max_upload_bytes)
    throttle = FailedAuthThrottle(
        settings.auth_failures_allowed, settings.auth_failure_window_seconds
    )
    app.state.auth_throttle = throttle
    app.add_middleware(RequestGuard, coordinator=coordinator, limits=limits, throttle=throttle)
    return app
