"""Jinja2 for the dashboard: templates shipped in the package, every value escaped."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from buildcoord.web.pages.ansi import ansi_html
from buildcoord.web.pages.changes import STREAMED

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none';"
    " object-src 'none'"
)
"""No inline script or style anywhere: htmx is told not to inject its own (base.html)."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


NAVIGATION = {
    "/": ("overview", "Overview"),
    "/servers": ("servers", "Servers"),
    "/queue": ("queue", "Queue"),
    "/alerts": ("alerts", "Alerts"),
    "/branches": ("branches", "Branches"),
    "/messages": ("messages", "Messages"),
    "/trends": ("trends", "Trends"),
}
"""Each page's path, its panel and its title, in the navigation's order."""


def ago(seconds: float | None) -> str:
    """A short age: 4 s, 3 min, 2 h, 5 d; an em dash for none."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def duration(seconds: float | None) -> str:
    """A build's length: 42 s, 3 min 05 s, 1 h 02 min."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def clock(at: datetime | None) -> str:
    """A time of day in UTC (with the date when it is not today)."""
    if at is None:
        return "—"
    at = at.astimezone(UTC)
    if at.date() == datetime.now(UTC).date():
        return at.strftime("%H:%M:%S")
    return at.strftime("%Y-%m-%d %H:%M")


def percent(value: float | None) -> str:
    """A fraction (0..1) as a whole percentage."""
    return "—" if value is None else f"{value * 100:.0f} %"


def gib(size: float | None) -> str:
    """Bytes as GiB with one decimal."""
    return "—" if size is None else f"{size / 2**30:.1f} GiB"


_environment = Environment(
    loader=PackageLoader("buildcoord.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.globals["pages"] = NAVIGATION
_environment.globals["panels"] = STREAMED
_environment.filters.update(
    ago=ago, duration=duration, clock=clock, percent=percent, gib=gib, ansi=ansi_html
)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A template rendered with the request's session context, and the security headers."""
    context.setdefault("viewer", None)
    context.setdefault("csrf", "")
    context.setdefault("panel", "")
    context.setdefault("title", "buildcoord")
    html = _environment.get_template(template).render(request_path=request.url.path, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """A dashboard request's error as a page (the API's errors stay JSON)."""
    return render(
        request, "error.html", status_code=status_code, error=message, back="/", title="Error"
    )
