"""Who is looking at the dashboard: the login form, the session cookie, CSRF tokens.

The session cookie holds the viewer's token (HttpOnly, SameSite=Strict; Secure when the page
came over HTTPS), and the request guard authenticates it before any body is read, as it does a
bearer token. Every action also carries a CSRF token, an HMAC of the session's token: a page
of another site can neither read it nor, with SameSite=Strict, send the cookie along.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from buildcoord.errors import Forbidden, InvalidInput, Unauthorized
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.web.guard import (
    MAX_TOKEN_CHARACTERS,
    PRINCIPAL_KEY,
    SESSION_COOKIE,
    SESSION_SECRET_KEY,
)
from buildcoord.web.pages.render import SECURITY_HEADERS, render
from buildcoord.web.throttle import client_address

router = APIRouter(include_in_schema=False)

PUBLIC_VIEWER = Principal("read", "public dashboard")

MAX_FIELDS = 50
"""Fields one form may have (the dashboard's have at most five)."""

SESSION_DAYS = 7
"""How long the browser keeps the session cookie."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """A dashboard viewer: who, and the CSRF token their actions carry ('' when public)."""

    principal: Principal
    csrf: str
    logged_in: bool

    @property
    def operator(self) -> bool:
        """Whether the viewer may act (cancel, retry, acknowledge, ...)."""
        return self.principal.kind == "operator"


class LoginRequired(Exception):
    """The page needs a session; the handler sends the browser to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def csrf_token(secret: str) -> str:
    """The CSRF token of a session: an HMAC of its token, so it needs no storage."""
    return hmac.new(secret.encode(), b"buildcoord dashboard csrf", hashlib.sha256).hexdigest()


def _coordinator(request: Request) -> Coordinator:
    found: Coordinator = request.app.state.coordinator
    return found


async def viewer(request: Request) -> Viewer:
    """The session's viewer; the public viewer when the dashboard is public; else to /login."""
    state = request.scope.get("state", {})
    principal = state.get(PRINCIPAL_KEY)
    if isinstance(principal, Principal):
        return Viewer(principal, csrf_token(state[SESSION_SECRET_KEY]), logged_in=True)
    if _coordinator(request).settings.public_dashboard:
        return Viewer(PUBLIC_VIEWER, "", logged_in=False)
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    raise LoginRequired(path)


async def form(request: Request) -> dict[str, str]:
    """The request's urlencoded form (the guard bounded its size), one value per field."""
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the form is not UTF-8") from exc
    try:
        fields = parse_qs(text, max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise InvalidInput(f"a form has at most {MAX_FIELDS} fields") from exc
    # A NUL sent raw or escaped (%00): the databases disagree on NUL (see web/guard.py).
    if "\x00" in text or any(
        "\x00" in key or any("\x00" in value for value in values) for key, values in fields.items()
    ):
        raise InvalidInput("NUL bytes are not allowed in a form")
    return {key: values[-1] for key, values in fields.items()}


async def actor(request: Request) -> Viewer:
    """A logged-in viewer whose action carries the session's CSRF token (header or field)."""
    found = await viewer(request)
    if not found.logged_in:
        raise Unauthorized("log in first: actions need an operator's session")
    given = request.headers.get("x-csrf-token")
    if given is None:
        given = (await form(request)).get("csrf")
    if not given or not hmac.compare_digest(given, found.csrf):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")
    return found


ViewerDep = Annotated[Viewer, Depends(viewer)]
ActorDep = Annotated[Viewer, Depends(actor)]


def safe_next(path: str | None) -> str:
    """Where to go after logging in: a path on this site only (never //host or a URL)."""
    if (
        not path
        or len(path) > 2000
        or not path.startswith("/")
        or path.startswith("//")
        or any(not "!" <= char <= "~" or char == "\\" for char in path)
    ):
        return "/"
    return path


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    """The login form: one field, the token."""
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token, keep it in the session cookie, go where the viewer was going."""
    fields = await form(request)
    secret = fields.get("token", "").strip()
    target = safe_next(fields.get("next"))
    error = None
    principal = None
    if not secret or len(secret) > MAX_TOKEN_CHARACTERS:
        error = "Enter a token."
    else:
        try:
            principal = await run_in_threadpool(_coordinator(request).tokens.authenticate, secret)
        except Unauthorized:
            request.app.state.auth_throttle.failed(client_address(request.scope))
            error = "That token is not valid (or was revoked)."
        if principal is not None and principal.kind not in ("operator", "read"):
            error = "That is an agent's token: log in with an operator or read-only token."
    if error is not None:
        return render(request, "login.html", status_code=401, next=target, error=error)
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=SESSION_DAYS * 86400,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request, who: ActorDep) -> Response:
    """End the session: the cookie is dropped."""
    response = RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def login_redirect(request: Request, next_path: str) -> Response:
    """The answer to LoginRequired: the browser goes to /login, and comes back to the page.

    A panel's refresh (htmx) sends the whole page there (HX-Redirect), not the login form into
    the panel; the live stream gets 401, and the page's next refresh does the rest.
    """
    if request.url.path == "/ui/stream":
        return Response("log in first", status_code=401, headers=SECURITY_HEADERS)
    if request.headers.get("hx-request") == "true":
        page = request.headers.get("hx-current-url", "")
        origin = f"{request.url.scheme}://{request.url.netloc}"
        next_path = safe_next(page[len(origin) :] if page.startswith(origin + "/") else "/")
        target = f"/login?next={quote(next_path, safe='/')}"
        return Response(status_code=200, headers={**SECURITY_HEADERS, "HX-Redirect": target})
    return RedirectResponse(
        f"/login?next={quote(next_path, safe='/')}", status_code=303, headers=SECURITY_HEADERS
    )
