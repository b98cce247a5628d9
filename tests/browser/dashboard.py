"""What the dashboard's browser tests share: logging in through the form, opening a page whose
live stream is connected, and the one-second budget a change has to reach the page.

"Within 1 s" is measured from the moment of the change: from just before the client call that
makes it, or from the ``at`` of the event the coordinator recorded for a change it made itself
(a server going stale, an alert opening). Playwright's expect then gets what is left of that
second as its timeout, so a page that shows the change later fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

from playwright.sync_api import Browser, Page, Response, Route

from buildcoord.client import Client
from buildcoord.models import Event
from live_fleet import LiveFleet

ONE_SECOND_MS = 1000.0

PAGES = ("/", "/servers", "/queue", "/alerts", "/branches", "/messages", "/trends")
"""Every page in the navigation."""

NAVIGATION = ("Overview", "Servers", "Queue", "Alerts", "Branches", "Messages", "Trends")
"""The navigation links' texts, in order."""

GIB = 2**30

LAN_HOST = "coordinator.test"
"""A host name the lan_chromium fixture's browser resolves to 127.0.0.1."""


def log_in(page: Page, fleet: LiveFleet, token: str | None = None, *, path: str = "/") -> None:
    """Log in through the login form with ``token`` (the admin token), landing on ``path``."""
    page.goto(f"{fleet.url}/login?next={quote(path, safe='/')}")
    page.fill("#token", token or fleet.admin_token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(fleet.url + path)


def open_live(page: Page, fleet: LiveFleet, path: str) -> Response | None:
    """Open a page, wait until its stream is live and, when the stream names the page's panel,
    until the stream's first refresh of it has been answered and swapped in: what changes from
    then on can reach the page only through the stream (the panels' own timers look every 10 s
    or more, far past a test's second). Return the page's response."""
    answered: list[str] = []

    def note(answer: Response) -> None:
        answered.append(_path(answer.url))

    page.on("response", note)
    response = page.goto(fleet.url + path)
    # Polled on each frame (expect polls at 100 ms and up): tests open hundreds of pages.
    page.wait_for_function(
        "() => document.getElementById('connection').dataset.state === 'live'", timeout=5000
    )
    panel = page.locator("main [data-panel]").first
    streamed = (page.locator("main").get_attribute("data-panels") or "").split()
    if panel.get_attribute("data-panel") in streamed:
        fragment = _path(panel.get_attribute("hx-get") or "")
        for _ in range(100):
            if fragment in answered:
                break
            page.wait_for_timeout(50)
        assert fragment in answered, f"the stream's first refresh of {fragment} never came"
    page.remove_listener("response", note)
    settled(page)
    return response


def settled(page: Page) -> None:
    """Wait until no htmx request or swap is under way on the page."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')",
        timeout=5000,
    )


def session_cookies(chromium: Browser, fleet: LiveFleet, token: str | None = None) -> list[Any]:
    """Log in through the form once, in a browser context of its own; the session's cookies,
    for other contexts (``context.add_cookies``) to skip the form."""
    context = chromium.new_context()
    try:
        log_in(context.new_page(), fleet, token)
        return list(context.cookies())
    finally:
        context.close()


def _path(url: str) -> str:
    return urlsplit(url).path


def left_of_a_second(since: float) -> float:
    """Milliseconds left of the second that began at ``since`` (time.monotonic()), at least 1
    (Playwright takes a timeout of 0 for none)."""
    return max(1.0, ONE_SECOND_MS - (time.monotonic() - since) * 1000.0)


def monotonic_at(event: Event) -> float:
    """The time.monotonic() reading at which the coordinator recorded ``event``."""
    return time.monotonic() - (time.time() - event.at.timestamp())


def await_event(
    client: Client,
    subject: str,
    kind: str,
    *,
    timeout: float = 15.0,
    interval: float = 0.02,
) -> Event:
    """The first event of ``kind`` about ``subject``, polled for as the coordinator records it."""
    deadline = time.monotonic() + timeout
    while True:
        for event in client.list_events(subject=subject, limit=1000):
            if event.kind == kind:
                return event
        if time.monotonic() > deadline:
            raise AssertionError(f"no {kind} event about {subject} within {timeout:.0f} s")
        time.sleep(interval)


def focus_trail(page: Page, wanted: Iterable[str], *, most: int) -> list[str]:
    """Press Tab from the top of the page until every name in ``wanted`` has had the focus, at
    most ``most`` times; what each press focused (its aria-label, else its text)."""
    missing = set(wanted)
    trail = []
    for _ in range(most):
        page.keyboard.press("Tab")
        name = page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.getAttribute('aria-label') || e.textContent || '').trim(); }"
        )
        trail.append(name)
        missing.discard(name)
        if not missing:
            break
    return trail


REFRESHES = ("**/ui/panel/**", "**/ui/jobs/*/panel", "**/ui/jobs/*/log?*")


@contextmanager
def refreshes_held(page: Page) -> Iterator[None]:
    """Refuse the page's refreshes meanwhile: a key pressed while htmx swaps a panel lands
    wherever the focus is mid-swap, so a keyboard test needs a page that holds still (that a
    refresh gives the focus back is test_live_updates'). The actions' own requests go through."""

    def refuse(route: Route) -> None:
        route.abort()

    for pattern in REFRESHES:
        page.route(pattern, refuse)
    try:
        yield
    finally:
        for pattern in REFRESHES:
            page.unroute(pattern, refuse)


def scroll_width(page: Page) -> int:
    """The page's scrollable width in CSS pixels (wider than the viewport: a horizontal scroll)."""
    width: int = page.evaluate("() => document.documentElement.scrollWidth")
    return width
