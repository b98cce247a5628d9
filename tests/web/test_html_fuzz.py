"""Hypothesis over the dashboard's HTML routes: the counterpart of tests/openapi_fuzz.py.

Every route of the live app outside /api/v1, the API's documents and the static files is found
by walking ``app.routes``, so a new page, panel or action is fuzzed without editing this file.
Each route's path and query parameters are read from its signature (FastAPI's dependant);
pages also get the query names they read by hand (``q``, ``status``, ``window``, ``page``),
and random ones. Values are hostile text (markup that would run if it were not escaped, NUL
bytes, percent-escapes, very long strings, unicode), out-of-range numbers, empty strings,
and the seeded fleet's real ids and names (tests/seeded.py), so that requests also reach real
objects. Actions get generated urlencoded forms, with and without the session's CSRF token.

Requests come as a logged-in operator, a read-only viewer, without a session and with an
unknown session cookie. Every answer must be below 500; an HTML answer must carry the
content security policy and show no injected markup unescaped; a redirect (Location or htmx's
HX-Redirect) must stay on this site; a refused request (4xx) must leave every table as it was,
and a page (GET) must never change any.

BUILDCOORD_HTML_FUZZ_EXAMPLES sets the examples per route (default 12).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, get_args
from urllib.parse import quote, urlsplit

import httpx
import hypothesis
import pytest
from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.services.health_rules import RULES
from buildcoord.store import Store
from buildcoord.web.pages.panels import PANELS
from inprocess import ADMIN_TOKEN, Connect
from seeded import (
    BRANCH,
    COMMIT,
    SERVERS,
    Restore,
    World,
    dump,
    restore,
    world,  # noqa: F401 - the fixture, found by name
)
from store_rows import StoreState

from .test_pages import log_in

EXAMPLES = int(os.environ.get("BUILDCOORD_HTML_FUZZ_EXAMPLES", "12"))

NOT_THE_DASHBOARD = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
"""The API's own documents (FastAPI's); the API under /api/v1 and /static are left out too."""

STREAMS = {
    "GET /ui/stream": (
        "an endless event stream: with a session it answers only when the coordinator stops, "
        "so it is fuzzed only without one (401 at once)"
    ),
}

PAGE_QUERY = {"q": False, "status": False, "window": False, "page": True, "next": False}
"""Query names the pages read from request.query_params, not from their signature (and
whether each is a whole number)."""

FORM_FIELDS = ("csrf", "priority", "branch", "auto_build", "hours", "rule", "subject", "token")
"""Form fields the actions read (from the body, not from their signature); ``next`` is in
PAGE_QUERY already."""

SESSION_COOKIE = "buildcoord_session"

# --- hostile values -----------------------------------------------------------------------------

MARKUP = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    '" autofocus onfocus="alert(1)',
    "javascript:alert(1)",
    "</textarea></title><script>alert(1)</script>",
)
TELLS = (
    "<script>alert(1)",
    "<img src=x",
    "onerror=alert(1)>",
    "<svg onload",
    'onfocus="alert(1)',
    'href="javascript:',
    'src="javascript:',
    'action="javascript:',
)
"""What the markup above looks like unescaped in a page; escaped, none of it can appear."""

STORED_MARKUP = f"{MARKUP[0]} {MARKUP[1]}"
HOSTILE_BRANCHES = ("<script>alert(1)</script>", '"><img/src=x/onerror=alert(1)>')
"""Branch names the API accepts (no space, no ~ ^ : ? * [ \\) that are markup all the same."""

ESCAPES = (
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    "%00",
    "%",
    "%ZZ",
    "%C0%AF",
    "%FF%FE",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e",
)
CONTROL = ("\x00", "a\x00b", "\r\nSet-Cookie: x=1", "\t", "\x1b[31mred\x1b[0m", "\x7f", "\x0b")
UNICODE = ("ünïcödé", "日本語", "\u202egnp.exe", "\ufeff", "\U0001d54f", "Ω≈ç√∫", "ﷺ", "\u0301")
NUMBERS = (
    "-1",
    "0",
    "1",
    "2",
    "10",
    "11",
    "99",
    str(2**31),
    str(2**63 - 1),
    str(2**63),
    str(-(2**63) - 1),
    str(10**30),
    "1e3",
    "0x10",
    " 1",
    "1.5",
    "+1",
    "00001",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "²",
    "¹²",
    "\u0661",
    "\uff11",
    "Ⅻ",
)
LONG = ("x" * 201, "A" * 2001, "9" * 5000, "<script>alert(1)</script>" * 400)
OTHER = (
    "",
    " ",
    "{{7*7}}",
    "{% raw %}",
    "${7*7}",
    "../../etc/passwd",
    "//evil.example/",
    "/\\evil",
)
KNOWN = (
    *PANELS,
    *(rule.name for rule in RULES),
    BRANCH,
    *HOSTILE_BRANCHES,
    *SERVERS,
    "on",
    "24h",
    "30d",
)
HOSTILE = (*MARKUP, *ESCAPES, *CONTROL, *UNICODE, *NUMBERS, *LONG, *OTHER)

SWEEP = (
    *MARKUP[:4],
    ESCAPES[0],
    ESCAPES[1],
    "%ZZ",
    "\x00",
    "",
    "-1",
    "0",
    "1.5",
    str(2**63),
    str(-(2**63) - 1),
    str(10**30),
    "²",
    "\uff11",
    "nan",
    "1e308",
    "x" * 5000,
    MARKUP[0] * 8,  # 200 characters: at the filters' limit
    "\u202egnp.exe",
    "//evil.example/",
    "/\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
)
"""Values every parameter gets, one parameter at a time, before the generated requests."""

NUMBER_SWEEP = frozenset(
    ("", "\x00", "-1", "0", "1.5", str(2**63), str(-(2**63) - 1), str(10**30), "²", "\uff11")
) | {MARKUP[0], "x" * 5000}
"""The SWEEP values a whole-number parameter (a row id, a cursor) gets."""


@dataclass(frozen=True)
class Sent:
    """What a request carried, as generated (before any encoding)."""

    label: str
    query: Sequence[tuple[str, str]] = ()
    form: Sequence[tuple[str, str]] = ()
    htmx: bool = False

    def last(self, where: str, name: str) -> str | None:
        """The value the app reads for name (the last one sent), or None."""
        pairs = self.query if where == "query" else self.form
        found = [value for key, value in pairs if key == name]
        return found[-1] if found else None


def _int_refused(value: str | None) -> bool:
    """Whether value passes str.isdigit() but int() refuses it (superscripts: '²', '①')."""
    if value is None or not value.isdigit():
        return False
    try:
        int(value)
    except ValueError:
        return True
    return False


def _beyond_int64(value: str | None) -> bool:
    """Whether value reads as a whole number (as FastAPI reads one) outside 64 bits."""
    try:
        number = TypeAdapter(int).validate_python(value)
    except ValidationError:
        return False
    return not -(2**63) <= number < 2**63


def _panel_query_refused(sent: Sent) -> bool:
    """Whether views._options may refuse the query (a page outside 1..1000000, a filter over
    200 characters); % escapes are not decoded here, so this errs on the side of yes."""
    if any(len(sent.last("query", name) or "") > 200 for name in ("q", "status", "window")):
        return True
    page = sent.last("query", "page")
    return page is not None and not (page.isdigit() and 1 <= int(page) <= 1_000_000)


@dataclass(frozen=True)
class KnownBug:
    """A bug this fuzzer found. While one is open (in KNOWN_BUGS), the fuzz keeps out of its
    way: a crash's requests are not sent, a refusal that changed the store is not compared.
    Once fixed, it moves to FIXED_BUGS, whose examples are sent as regression cases."""

    reason: str
    meets: Callable[[Sent], bool]
    crash: bool
    """True: a 500 (not sent); False: a 4xx answered after the store changed (not compared)."""
    example: Sent


FIXED_BUGS = (
    KnownBug(
        "web/pages/views.py _options: page='²' passes str.isdigit() and int() raises "
        "ValueError: 500 on every page and panel (and on every action sent by htmx)",
        lambda sent: _int_refused(sent.last("query", "page")),
        crash=True,
        example=Sent("GET /servers", query=(("page", "²"),)),
    ),
    KnownBug(
        "web/pages/views.py set_job_priority: priority='²' passes str.isdigit() and int() "
        "raises ValueError: 500",
        lambda sent: _int_refused(sent.last("form", "priority")),
        crash=True,
        example=Sent("POST /ui/jobs/{job_id}/priority", form=(("priority", "²"),)),
    ),
    KnownBug(
        "web/pages/views.py log_fragment: its cursor `after: int` has no bound (the API's "
        "has le=INT64_MAX): after=2**63 on a job that exists reaches the database, 500 "
        "(SQLite: OverflowError; PostgreSQL: DataError, bigint out of range)",
        lambda sent: (
            sent.label == "GET /ui/jobs/{job_id}/log" and _beyond_int64(sent.last("query", "after"))
        ),
        crash=True,
        example=Sent("GET /ui/jobs/{job_id}/log", query=(("after", str(2**63)),)),
    ),
    KnownBug(
        "web/pages/views.py _act: an action sent by htmx is done first and the panel's query "
        "checked after: POST /ui/jobs/N/cancel?page=0 cancels the job and answers 422",
        lambda sent: (
            sent.label.startswith("POST /ui/") and sent.htmx and _panel_query_refused(sent)
        ),
        crash=False,
        example=Sent("POST /ui/jobs/{job_id}/cancel", query=(("page", "0"),), htmx=True),
    ),
)


KNOWN_BUGS: tuple[KnownBug, ...] = ()
"""Bugs found and not fixed yet (none now)."""


def known_crash(sent: Sent) -> bool:
    """Whether a request would meet a known 500 (so it is not sent)."""
    return any(bug.crash and bug.meets(sent) for bug in KNOWN_BUGS)


SITE = "http://testserver"
REDIRECT_TARGETS = (
    "/queue?page=2",
    f"{SITE}/queue",
    f"{SITE}//evil.example/",
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example",
    "javascript:alert(1)",
)


def values(extra: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """A value for a parameter or a form field: mostly chosen hostile ones, some random."""
    return st.one_of(
        st.sampled_from((*HOSTILE, *KNOWN, *extra)),
        st.text(max_size=40),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.builds(lambda mark, n: mark * n, st.sampled_from(MARKUP), st.integers(1, 300)),
        st.builds(lambda char, n: char * n, st.sampled_from("x<%9é"), st.integers(0, 2100)),
    )


def header_safe(text: str) -> str:
    """text as a header value may carry it: printable ASCII only."""
    return "".join(char for char in text if " " <= char <= "~")


# --- the routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A path or query parameter of a route, as its signature declares it."""

    name: str
    integer: bool


@dataclass(frozen=True)
class Operation:
    """One method of one dashboard route and its declared parameters."""

    method: str
    path: str
    path_params: tuple[Param, ...]
    query_params: tuple[Param, ...]

    @property
    def label(self) -> str:
        """How SKIPPED-like tables name it: ``GET /jobs/{job_id}``."""
        return f"{self.method} {self.path}"


def _flat_routes(app: FastAPI) -> list[Any]:
    """Every route of the app, included routers' routes with their effective paths.

    Newer FastAPI keeps an included router as one entry of ``app.routes``; its
    ``iter_route_contexts`` walks them. Older FastAPI copies the routes into ``app.routes``.
    """
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    if iterate is None:
        return list(app.routes)
    return list(iterate(app.routes))


def _is_integer(annotation: Any) -> bool:
    return annotation is int or int in get_args(annotation)


def _declared(dependant: Any, kind: str) -> Iterator[Param]:
    """The path or query parameters of a route's dependant and of its dependencies."""
    if dependant is None:
        return
    for field in getattr(dependant, kind, ()):
        yield Param(field.alias, _is_integer(field.field_info.annotation))
    for sub in getattr(dependant, "dependencies", ()):
        yield from _declared(sub, kind)


def _unique(params: Iterator[Param]) -> tuple[Param, ...]:
    return tuple({param.name: param for param in params}.values())


def dashboard_operations(app: FastAPI) -> list[Operation]:
    """Every method of every route of the dashboard (login, pages, panels, actions)."""
    found: dict[str, Operation] = {}
    for route in _flat_routes(app):
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if not isinstance(path, str) or not methods:
            continue  # a mount (the static files) has no methods of its own
        if path.startswith(("/api/v1/", "/static/")) or path in NOT_THE_DASHBOARD:
            continue
        dependant = getattr(route, "dependant", None)
        declared = list(_declared(dependant, "path_params"))
        named = {param.name for param in declared}
        in_path = re.findall(r"\{(\w+)(?::\w+)?\}", path)
        declared += [Param(name, False) for name in in_path if name not in named]
        query = _unique(_declared(dependant, "query_params"))
        for method in sorted(set(methods) - {"HEAD"}):
            operation = Operation(method, path, _unique(iter(declared)), query)
            found[operation.label] = operation
    return sorted(found.values(), key=lambda each: each.label)


# --- requests and what every answer must be -----------------------------------------------------


@dataclass(frozen=True)
class Sessions:
    """The cookies and CSRF tokens of the viewers a request may come from."""

    operator: str
    operator_csrf: str
    viewer: str
    viewer_csrf: str

    def cookie(self, who: str, stranger: str) -> str | None:
        """The session cookie of who (``stranger``: an unknown one; ``none``: no cookie)."""
        return {"operator": self.operator, "viewer": self.viewer, "stranger": stranger}.get(who)

    def csrf(self, who: str) -> str:
        """The CSRF token the pages of who's session carry ('' without one)."""
        return {"operator": self.operator_csrf, "viewer": self.viewer_csrf}.get(who, "")


def sessions_of(http: TestClient, seeded: World) -> Sessions:
    """Log in as the operator and as a read-only viewer, the way a browser does."""
    tokens: list[str] = []
    for secret in (ADMIN_TOKEN, seeded.read_token):
        http.cookies.clear()
        tokens.append(log_in(http, secret))
        cookie = http.cookies.get(SESSION_COOKIE)
        assert cookie == secret
    http.cookies.clear()
    return Sessions(ADMIN_TOKEN, tokens[0], seeded.read_token, tokens[1])


def _encode(value: str, keep_escapes: bool) -> str:
    """value for a URL: every reserved character escaped, or its own %-escapes left raw."""
    return quote(value, safe="%" if keep_escapes else "")


def url_of(
    operation: Operation,
    path_values: dict[str, str],
    query: Sequence[tuple[str, str]],
    keep_escapes: bool,
) -> str:
    """The request's URL (relative) with the generated values in place."""
    path = operation.path
    for name, value in path_values.items():
        path = re.sub(r"\{" + name + r"(?::\w+)?\}", _encode(value, keep_escapes), path)
    if not query:
        return path
    pairs = "&".join(
        f"{_encode(name, keep_escapes)}={_encode(value, keep_escapes)}" for name, value in query
    )
    return f"{path}?{pairs}"


def assert_on_site(target: str, what: str) -> None:
    """A redirect's target is a path on this site (or this site's own URL)."""
    assert target == target.strip(), f"{target!r} has spaces around it ({what})"
    assert not any(char < " " or char == "\x7f" for char in target), f"{target!r} ({what})"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        assert f"{parts.scheme}://{parts.netloc}" == SITE, f"{target!r} leaves the site ({what})"
        return
    assert target.startswith("/"), f"{target!r} is not a path ({what})"
    assert not target.startswith(("//", "/\\")), f"{target!r} leaves the site ({what})"


def check_answer(response: httpx.Response, label: str) -> None:
    """No 5xx; HTML escaped and under the CSP; redirects on this site only."""
    status = response.status_code
    assert status < 500, f"answered {status} to {label}: {response.text[:2000]}"
    if response.headers.get("content-type", "").startswith("text/html"):
        text = response.text
        shown = [tell for tell in TELLS if tell in text]
        assert not shown, f"{shown} unescaped in the page answering {label}"
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy, f"no CSP on the page answering {label}"
        assert "unsafe-inline" not in policy
    if 300 <= status < 400:
        assert_on_site(response.headers.get("location", ""), f"answering {label}, Location")
    if "hx-redirect" in response.headers:
        assert_on_site(response.headers["hx-redirect"], f"answering {label}, HX-Redirect")


FUZZ_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,  # writes nothing into the checkout
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)

FORM = "application/x-www-form-urlencoded"


@dataclass
class Fuzzer:
    """Sends requests to the app in process and checks each answer."""

    app: FastAPI
    http: TestClient
    world: World
    sessions: Sessions
    state: StoreState
    reseed: Restore
    planted: tuple[int, ...]
    """Queued jobs of the branches with markup in their names (plant_markup)."""

    def __post_init__(self) -> None:
        self.seeded_state = self.state()
        self.last_state = self.seeded_state
        self.requests = 0

    # --- values of this fleet

    def seeded_ids(self) -> tuple[str, ...]:
        """Ids of real objects of the seeded fleet (jobs of every status, messages, orders)."""
        fleet = self.world
        ids = {fleet.cancelled_job, fleet.comparison, *fleet.queued_jobs, *self.planted}
        for seat in fleet.seats.values():
            ids.update((seat.running_job, seat.built_job, seat.message, seat.order))
        return tuple(str(each) for each in sorted(ids))

    def tokens(self) -> tuple[str, ...]:
        """Secrets a login form may be given: good ones, revoked, an agent's."""
        seat = next(iter(self.world.seats.values()))
        return (ADMIN_TOKEN, self.world.read_token, self.world.revoked_token, seat.token)

    def default_path(self, operation: Operation) -> dict[str, str]:
        """Path values that name real objects: build1's running job (with markup in its log)
        for a page, a queued job of a branch named with markup for an action, build1's
        message, a panel."""
        seat = self.world.seats[SERVERS[0]]
        job = seat.running_job if operation.method == "GET" else self.planted[0]
        known = {"job_id": str(job), "message_id": str(seat.message)}
        return {
            param.name: known.get(param.name, "1") if param.integer else next(iter(PANELS))
            for param in operation.path_params
        }

    # --- one request

    def send(
        self,
        operation: Operation,
        sent: Sent,
        who: str,
        *,
        path_values: dict[str, str] | None = None,
        keep_escapes: bool = True,
        stranger: str = "not-a-token",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        each_state: bool = True,
        excuse_known_bugs: bool = True,
    ) -> httpx.Response:
        """Send one request and check its answer; with each_state, also that a refusal or a
        page changed no table (else the caller compares the store around many requests).

        body: the form as sent (sent.form is what it carries, for KNOWN_BUGS); None: the
        form of sent.form urlencoded, or no body for a GET. excuse_known_bugs: compare no
        store around a request that meets a KNOWN_BUGS refusal that changes it.
        """
        headers = dict(headers or {})
        sent = replace(sent, htmx=headers.get("HX-Request") == "true")
        if body is None and operation.method != "GET":
            body = form_body(sent.form, keep_escapes)
            headers.setdefault("Content-Type", FORM)
        cookie = self.sessions.cookie(who, stranger)
        if cookie is not None:
            headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        path = {**self.default_path(operation), **(path_values or {})}
        url = url_of(operation, path, sent.query, keep_escapes)
        label = f"{operation.label} as {who}: {operation.method} {url[:300]}"
        if body is not None:
            label += f" with {body[:300]!r}"
        label += f" headers {headers}"
        self.http.cookies.clear()  # only the Cookie header above: a login or logout sets none
        self.requests += 1
        try:
            response: httpx.Response = self.http.request(
                operation.method, url, content=body, headers=headers, follow_redirects=False
            )
        except Exception as exc:  # in process, a 500 arrives as the app's exception
            raise AssertionError(f"the app raised {exc!r} (a 500) on {label}") from exc
        check_answer(response, label)
        if each_state:
            now = self.state()
            kept = response.status_code >= 400 or operation.method == "GET"
            excused = excuse_known_bugs and any(bug.meets(sent) for bug in KNOWN_BUGS)
            if kept and not excused:
                assert now == self.last_state, (
                    f"answered {response.status_code} and changed the store: {label}"
                )
            self.last_state = now
        return response

    def fresh(self) -> None:
        """Put the seeded fleet back if an action changed it (before each route's requests:
        putting it back after every action that succeeds costs more than the rest)."""
        if self.last_state != self.seeded_state:
            self.reseed()
            self.last_state = self.seeded_state

    def unchanged(self, label: str) -> None:
        """The store is as before requests sent without each_state."""
        assert self.state() == self.last_state, f"{label} changed the store"

    # --- every chosen hostile value in every parameter, one at a time

    def sweep_page(self, operation: Operation) -> None:
        """Each SWEEP value in each path and query parameter of a GET route, and in every
        query name the pages read at once (then in the text ones only: a refused page number
        would hide the rest); as the operator (as nobody for a stream)."""
        stream = operation.label in STREAMS
        names = {param.name: param.integer for param in operation.query_params}
        names.update({name: number for name, number in PAGE_QUERY.items() if name not in names})
        texts = [name for name, number in names.items() if not number]
        for value in SWEEP:
            label = operation.label
            cases = [
                (Sent(label), {param.name: value})
                for param in operation.path_params
                if value in NUMBER_SWEEP or not param.integer
            ]
            cases += [
                (Sent(label, query=((param.name, value),)), {})
                for param in operation.query_params
                if value in NUMBER_SWEEP or not param.integer
            ]
            cases.append((Sent(label, query=[(name, value) for name in texts]), {}))
            cases.append((Sent(label, query=[(name, value) for name in names]), {}))
            for sent, path_values in cases:
                if not stream and not known_crash(sent):
                    self.send(
                        operation, sent, "operator", path_values=path_values, each_state=False
                    )
            # Without a session, only the redirect to /login (or the stream's 401) answers.
            self.send(operation, cases[-1][0], "none", each_state=False)
        self.unchanged(f"GET requests to {operation.path}")

    def sweep_action(self, operation: Operation) -> None:
        """Each SWEEP value in each path parameter of a POST route, and in every form field
        the actions read at once: as a plain form (with the session's own token, so that a
        login succeeds, and the value as the Referer's path to go back to), and by htmx (the
        token too the value, and the value in the text query names the panels read too); as
        the operator with the right CSRF token."""
        csrf = ("csrf", self.sessions.operator_csrf)
        htmx = {"HX-Request": "true"}
        texts = [name for name, number in PAGE_QUERY.items() if not number]
        self.fresh()
        for value in SWEEP:
            label = operation.label
            fields = [(name, value) for name in (*FORM_FIELDS, "next") if name != "csrf"]
            signed = [*((name, each) for name, each in fields if name != "token"), csrf]
            signed.append(("token", self.sessions.operator))
            query = [(name, value) for name in texts]
            cases: list[tuple[Sent, dict[str, str], dict[str, str]]] = [
                (Sent(label, form=[csrf]), {param.name: value}, {})
                for param in operation.path_params
                if value in NUMBER_SWEEP or not param.integer
            ]
            cases += [
                (Sent(label, form=signed), {}, {"Referer": header_safe(SITE + value)}),
                (Sent(label, query=query, form=[*fields, csrf]), {}, htmx),
            ]
            for sent, path_values, headers in cases:
                if not known_crash(sent):
                    self.send(operation, sent, "operator", path_values=path_values, headers=headers)

    # --- generated requests

    def path_value(self, param: Param) -> st.SearchStrategy[str]:
        known = self.seeded_ids() if param.integer else tuple(KNOWN)
        return st.one_of(st.sampled_from(known), values())

    def headers(self) -> st.SearchStrategy[dict[str, str]]:
        """htmx's headers and a Referer, present or not, hostile or not."""
        target = st.one_of(st.sampled_from(REDIRECT_TARGETS), values()).map(header_safe)
        return st.fixed_dictionaries(
            {},
            optional={
                "HX-Request": st.sampled_from(("true", "true", "false", "")),
                "HX-Current-URL": target,
                "Referer": target,
            },
        )

    def fuzz_page(self, operation: Operation) -> None:
        """Generated path values, query strings, sessions and headers for one GET route."""
        who_can = ("none", "stranger") if operation.label in STREAMS else WHO
        names = (*(param.name for param in operation.query_params), *PAGE_QUERY)

        @FUZZ_SETTINGS
        @hypothesis.given(
            path_values=st.fixed_dictionaries(
                {param.name: self.path_value(param) for param in operation.path_params}
            ),
            query=queries(names, values(self.seeded_ids())),
            keep_escapes=st.booleans(),
            who=st.sampled_from(who_can),
            stranger=STRANGERS,
            headers=self.headers(),
        )
        def each(
            path_values: dict[str, str],
            query: list[tuple[str, str]],
            keep_escapes: bool,
            who: str,
            stranger: str,
            headers: dict[str, str],
        ) -> None:
            sent = Sent(operation.label, query=query)
            hypothesis.assume(not known_crash(sent))
            self.send(
                operation,
                sent,
                who,
                path_values=path_values,
                keep_escapes=keep_escapes,
                stranger=stranger,
                headers=headers,
            )

        each()

    def fuzz_action(self, operation: Operation) -> None:
        """Generated forms (with and without the right CSRF token), queries, sessions and
        headers for one POST route."""
        field_name = st.one_of(st.sampled_from((*FORM_FIELDS, "next")), st.text(max_size=12))
        field_value = values((*self.seeded_ids(), *self.tokens(), *REDIRECT_TARGETS))
        limit = self.app.state.coordinator.settings.max_request_bytes
        self.fresh()

        @FUZZ_SETTINGS
        @hypothesis.given(
            path_values=st.fixed_dictionaries(
                {param.name: self.path_value(param) for param in operation.path_params}
            ),
            query=queries(tuple(PAGE_QUERY), values()),
            fields=st.lists(st.tuples(field_name, field_value), max_size=5),
            csrf=st.sampled_from(("right", "right", "header", "wrong", "missing", "hostile")),
            keep_escapes=st.booleans(),
            tail=st.sampled_from(
                (b"", b"", b"&", b"&&==&", b"&x=%00", b"&x=\x00", b"&x=\xff\xfe", b"&x=%ZZ")
            ),
            many=st.sampled_from((0, 0, 0, 49, 60)),
            oversized=st.sampled_from((False,) * 9 + (True,)),
            content_type=st.sampled_from(
                (FORM, FORM, f"{FORM}; charset=utf-8", "multipart/form-data; boundary=x", None)
            ),
            who=st.sampled_from(("operator", *WHO)),
            stranger=STRANGERS,
            headers=self.headers(),
        )
        def each(
            path_values: dict[str, str],
            query: list[tuple[str, str]],
            fields: list[tuple[str, str]],
            csrf: str,
            keep_escapes: bool,
            tail: bytes,
            many: int,
            oversized: bool,
            content_type: str | None,
            who: str,
            stranger: str,
            headers: dict[str, str],
        ) -> None:
            headers = dict(headers)
            token = self.sessions.csrf(who)
            if csrf == "right":
                fields = [*fields, ("csrf", token)]
            elif csrf == "header":
                headers["X-CSRF-Token"] = token
            elif csrf == "wrong":
                fields = [*fields, ("csrf", "0" * 64)]
            elif csrf == "hostile":
                fields = [*fields, ("csrf", MARKUP[0])]
            fields += [(f"f{n}", "x") for n in range(many)]
            sent = Sent(operation.label, query=query, form=fields)
            hypothesis.assume(not known_crash(sent))
            body = form_body(fields, keep_escapes) + tail
            if oversized:
                body += b"&big=" + b"9" * limit
            if content_type is not None:
                headers["Content-Type"] = content_type
            self.send(
                operation,
                sent,
                who,
                path_values=path_values,
                keep_escapes=keep_escapes,
                stranger=stranger,
                headers=headers,
                body=body,
            )

        each()


def queries(
    names: Sequence[str], value: st.SearchStrategy[str]
) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Query strings: some of the names a route reads, each with a value, and random ones."""
    known = st.fixed_dictionaries({}, optional=dict.fromkeys(names, value))
    other = st.lists(st.tuples(st.text(max_size=12), value), max_size=2)
    return st.builds(lambda chosen, extra: [*chosen.items(), *extra], known, other)


WHO = ("operator", "viewer", "none", "stranger")
"""A logged-in operator, a read-only viewer, no session, an unknown session cookie."""

STRANGERS = st.sampled_from(("not-a-token", "x" * 600, *MARKUP)).map(header_safe)
"""Session cookies no one was given."""


def form_body(fields: Sequence[tuple[str, str]], keep_escapes: bool) -> bytes:
    """fields urlencoded."""
    return "&".join(
        f"{_encode(name, keep_escapes)}={_encode(value, keep_escapes)}" for name, value in fields
    ).encode()


def plant_markup(operator: Client, connect: Connect, fleet: World) -> tuple[int, ...]:
    """Markup stored where the pages show it: branch names and commands, their queued jobs,
    a message, build1's running job's log lines (plain and in ANSI colours)."""
    planted = []
    for name in HOSTILE_BRANCHES:
        operator.add_branch(name, repo=f"/srv/{MARKUP[1]}", command=STORED_MARKUP)
        planted.append(operator.submit_job(name, COMMIT).id)
    operator.send_message(
        sender=SERVERS[0], recipient="all", type="warning", subject=STORED_MARKUP, body=MARKUP[2]
    )
    seat = fleet.seats[SERVERS[0]]
    lines = [{"message": STORED_MARKUP}, {"message": f"\x1b[1;31m{MARKUP[1]}\x1b[0m{MARKUP[3]}"}]
    connect(seat.token).append_log(
        seat.running_job, lines, server=seat.name, fencing_token=seat.fencing_token
    )
    return tuple(planted)


@pytest.fixture
def fuzzer(
    app: FastAPI,
    http: TestClient,
    store: Store,
    world: World,  # noqa: F811 - the fixture imported above
    operator: Client,
    connect: Connect,
    store_state: StoreState,
) -> Fuzzer:
    """The seeded fleet with markup planted in it, logged-in sessions, and the fuzzer."""
    planted = plant_markup(operator, connect, world)
    rows = dump(store)
    sessions = sessions_of(http, world)
    return Fuzzer(app, http, world, sessions, store_state, lambda: restore(store, rows), planted)


def operations_of(app: FastAPI, method: str) -> list[Operation]:
    return [operation for operation in dashboard_operations(app) if operation.method == method]


# --- the tests ----------------------------------------------------------------------------------


def test_every_dashboard_route_is_found_and_every_skipped_one_still_exists(app: FastAPI) -> None:
    operations = dashboard_operations(app)
    labels = {operation.label for operation in operations}

    assert not [label for label in labels if " /api/" in label or " /static" in label]
    assert {"GET /", "GET /login", "POST /login", "POST /logout", "GET /jobs/{job_id}"} <= labels
    assert "POST /ui/jobs/{job_id}/cancel" in labels
    assert set(STREAMS) <= labels, "a stream named in STREAMS is no route any more"
    assert {bug.example.label for bug in (*KNOWN_BUGS, *FIXED_BUGS)} <= labels
    job = next(each for each in operations if each.label == "GET /ui/jobs/{job_id}/log")
    assert job.path_params == (Param("job_id", integer=True),)
    assert Param("after", integer=True) in job.query_params


def test_every_dashboard_page_answers_hostile_paths_and_queries_without_5xx_and_escaped(
    fuzzer: Fuzzer,
) -> None:
    pages = operations_of(fuzzer.app, "GET")
    assert len(pages) >= 13
    for operation in pages:
        fuzzer.sweep_page(operation)
        fuzzer.fuzz_page(operation)
    assert fuzzer.requests > 40 * len(pages)


def test_every_dashboard_action_answers_hostile_forms_without_5xx_and_refusals_change_nothing(
    fuzzer: Fuzzer,
) -> None:
    actions = operations_of(fuzzer.app, "POST")
    assert len(actions) >= 10
    for operation in actions:
        fuzzer.sweep_action(operation)
        fuzzer.fuzz_action(operation)
    assert fuzzer.requests > 40 * len(actions)


@pytest.mark.parametrize("bug", FIXED_BUGS, ids=[bug.example.label for bug in FIXED_BUGS])
def test_an_input_that_once_crashed_or_half_acted_is_refused_cleanly(
    fuzzer: Fuzzer, bug: KnownBug
) -> None:
    operation = next(
        each for each in dashboard_operations(fuzzer.app) if each.label == bug.example.label
    )
    fields = bug.example.form
    if operation.method == "POST":
        fields = [*fields, ("csrf", fuzzer.sessions.operator_csrf)]
    headers = {"HX-Request": "true"} if bug.example.htmx else {}

    fuzzer.send(
        operation,
        replace(bug.example, form=fields),
        "operator",
        headers=headers,
        excuse_known_bugs=False,
    )
