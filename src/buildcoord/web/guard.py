"""The gate every request passes before any route reads its body.

A pure ASGI middleware, so that nothing of a request is held in memory before it is allowed:

- a path or query string with a NUL byte is refused (422): the databases disagree on NUL
  (PostgreSQL refuses it, SQLite stores it), so no text carrying one may reach the store;
- under ``/api/v1`` the bearer token is checked first (401), except on the few public routes,
  and the principal is handed to the route through the request's state;
- the body is bounded per route (413): by Content-Length at once, and on the stream as it is
  read, so a body sent without a length (chunked) is cut off at the limit too.

An unauthenticated client therefore never makes the coordinator read a byte of its body, and
an authenticated one at most its route's limit.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from buildcoord.errors import Unauthorized
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.web.throttle import FailedAuthThrottle, client_address

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v1/"

PUBLIC_ROUTES = frozenset({"/api/v1/health", "/api/v1/hooks/git"})
OUTSIDE_ROUTES = frozenset({"/metrics"})
"""Routes outside /api/v1 that need a token all the same (Prometheus' scrape path)."""
"""Routes that take no bearer token: the liveness probe, and the push webhook (signed by HMAC,
its own checks bound and refuse its body)."""

MAX_TOKEN_CHARACTERS = 512
"""Longer than any token buildcoord issues; a longer Authorization header is not read further."""

PRINCIPAL_KEY = "buildcoord.principal"
"""Where the authenticated principal waits in the request's state for the route."""

SESSION_COOKIE = "buildcoord_session"
"""The dashboard's session: the viewer's token, HttpOnly and SameSite=Strict."""

SESSION_SECRET_KEY = "buildcoord.session_secret"
"""Where the dashboard session's token waits for the route (its CSRF token derives from it)."""

DASHBOARD_PUBLIC_PATHS = frozenset({"/login", "/favicon.ico"})
"""Dashboard paths that need no session (the login page takes the token in its body)."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """How many bytes a request body may have: one small default, larger only where needed."""

    default: int
    upload: int
    """For the routes that carry a manifest, a batch of log lines, a seed checkout's files."""

    def for_route(self, method: str, path: str) -> int:
        """The limit of this request's body."""
        if method == "POST" and _UPLOAD_ROUTES.fullmatch(path):
            return self.upload
        return self.default


_UPLOAD_ROUTES = re.compile(r"/api/v1/jobs/[0-9]+/(complete|log)|/api/v1/legacy/import")


class BodyTooLarge(HTTPException):
    """The body went past its route's limit while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes, the limit of this route")


class RequestGuard:
    """Refuse NUL bytes, authenticate and bound the body before the app sees a request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        coordinator: Coordinator,
        limits: BodyLimits,
        throttle: FailedAuthThrottle,
    ) -> None:
        self.app = app
        self.coordinator = coordinator
        self.limits = limits
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if _has_nul(path, scope.get("query_string", b"")):
            await _refuse(scope, receive, send, 422, "NUL bytes are not allowed in a path or query")
            return
        checked = (path.startswith(API_PREFIX) and path not in PUBLIC_ROUTES) or path in (
            OUTSIDE_ROUTES
        )
        if checked or is_dashboard_path(path):
            address = client_address(scope)
            wait = self.throttle.retry_after(address)
            if wait is not None:
                detail = (
                    f"too many failed authentications from {address or 'this address'}: "
                    f"try again in {wait} s"
                )
                await _refuse(scope, receive, send, 429, detail, {"Retry-After": str(wait)})
                return
        if checked:
            try:
                principal = await self._authenticate(scope)
            except Unauthorized as exc:
                if _header(scope, b"authorization"):  # a token was tried: a guess, perhaps
                    self.throttle.failed(client_address(scope))
                headers = {"WWW-Authenticate": "Bearer"}
                await _refuse(scope, receive, send, 401, str(exc), headers)
                return
            except OperationalError as exc:
                await _refuse(scope, receive, send, 503, f"database unavailable: {exc.orig}")
                return
            scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        elif is_dashboard_path(path):
            refusal = await self._dashboard_session(scope)
            if refusal is not None:
                await _refuse(scope, receive, send, *refusal)
                return
        limit = self.limits.for_route(scope["method"], path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, 413, BodyTooLarge(limit).detail)
            return
        await self.app(scope, _bounded(receive, limit), send)

    async def _authenticate(self, scope: Scope) -> Principal:
        header = _header(scope, b"authorization")
        scheme, _, secret = header.partition(" ")
        token = secret.strip() if scheme.lower() == "bearer" else None
        return await self._principal(token)

    async def _dashboard_session(self, scope: Scope) -> tuple[int, str] | None:
        """Authenticate a dashboard request's session cookie, if it has one.

        A page without a valid session is the page's to answer (a redirect to /login, or the
        public dashboard); a request that would change something (any method but GET and
        HEAD, the login form apart) is refused here, before its body is read.
        """
        secret = _cookie(scope, SESSION_COOKIE)
        principal = None
        if secret:
            try:
                principal = await self._principal(secret)
            except Unauthorized:
                self.throttle.failed(client_address(scope))
                principal = None
            except OperationalError as exc:
                return 503, f"database unavailable: {exc.orig}"
        if principal is not None and principal.kind in ("operator", "read"):
            state = scope.setdefault("state", {})
            state[PRINCIPAL_KEY] = principal
            state[SESSION_SECRET_KEY] = secret
            return None
        if scope["method"] in ("GET", "HEAD") or scope["path"] in DASHBOARD_PUBLIC_PATHS:
            return None
        return 401, "log in first: this action needs an operator's session"

    async def _principal(self, token: str | None) -> Principal:
        if token is not None and len(token) > MAX_TOKEN_CHARACTERS:
            raise Unauthorized("invalid or revoked token")
        tokens = self.coordinator.tokens
        known = tokens.cached(token)
        if known is not None:
            return known
        return await run_in_threadpool(tokens.authenticate, token)


def request_principal(state: MutableMapping[str, Any]) -> Principal:
    """The principal the guard authenticated for this request."""
    found = state.get(PRINCIPAL_KEY)
    if not isinstance(found, Principal):
        raise Unauthorized("missing bearer token: set BUILDCOORD_TOKEN or pass --token")
    return found


def _bounded(receive: Receive, limit: int) -> Receive:
    """receive, raising BodyTooLarge as soon as the body read so far passes limit."""
    size = 0

    async def bounded() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
        return message

    return bounded


def is_dashboard_path(path: str) -> bool:
    """Whether a path is the dashboard's (not the API's, /metrics or a static file)."""
    return (
        not path.startswith(("/api/", "/static/"))
        and path not in OUTSIDE_ROUTES
        and path
        not in (
            "/openapi.json",
            "/docs",
            "/redoc",
        )
    )


def _cookie(scope: Scope, name: str) -> str | None:
    """One cookie's value from the request's Cookie headers, or None."""
    for key, value in scope.get("headers", ()):
        if key.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie_name, _, cookie_value = part.strip().partition("=")
            if cookie_name == name:
                return cookie_value.strip() or None
    return None


def _has_nul(path: str, query_string: bytes) -> bool:
    return "\x00" in path or b"\x00" in unquote_to_bytes(query_string.replace(b"+", b" "))


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


def _content_length(scope: Scope) -> int | None:
    declared = _header(scope, b"content-length").strip()
    return int(declared) if declared.isdigit() else None


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with the API's error body without reading the request's body."""
    response = JSONResponse({"error": message}, status_code=status, headers=headers)
    await response(scope, receive, send)
