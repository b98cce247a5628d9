"""A real headless Chromium and a live coordinator for the browser tests.

Playwright drives the system's chromium through ``executable_path``; its own browser download
is not used. scripts/test finds or installs chromium, exports BUILDCOORD_CHROMIUM and sets
BUILDCOORD_REQUIRE_BROWSER=1, so a run in which these tests were skipped fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from live_fleet import LiveFleet, live_fleet

from .dashboard import LAN_HOST, session_cookies

BROWSER_TESTS = Path(__file__).resolve().parent

QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
"""Chromium's own connections (updates, sync, field trials) off: a closed network refuses them,
and the tests need only loopback."""


def chromium_executable() -> str | None:
    """$BUILDCOORD_CHROMIUM, else chromium or chromium-browser on PATH, else None."""
    return (
        os.environ.get("BUILDCOORD_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser `browser`; the hook sees the whole session's items."""
    for item in items:
        if item.path.resolve().is_relative_to(BROWSER_TESTS):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the session, or a skip when none is installed."""
    executable = chromium_executable()
    if executable is None:
        pytest.skip(
            "chromium not found: install it (Debian: apt-get install chromium) "
            "or set BUILDCOORD_CHROMIUM=/path/to/chromium"
        )
    # Chromium's sandbox refuses to start as root, and CI runs as root.
    args = [*QUIET_FLAGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A page in a browser context of its own: no cookies or storage left by another test."""
    context = chromium.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def live_coordinator(tmp_path: Path) -> Iterator[LiveFleet]:
    """``buildcoord serve`` on 127.0.0.1 with a fresh SQLite database, stopped by pid after.

    ``.url`` is its base URL, ``.admin_token`` the operator token it was started with.
    """
    with live_fleet(tmp_path / "coordinator") as coordinator:
        yield coordinator


@pytest.fixture(scope="session")
def shared_coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFleet]:
    """One live coordinator for the session's browser tests (starting one takes seconds), its
    monitor stepping every second and heartbeats due every second: a server that sent one is
    stale 3 s later, and alerts open within a second. Each test makes servers, jobs and
    messages of its own and looks only at those; a test that restarts the coordinator, needs
    other settings or a known id starts its own."""
    settings = {"monitor_seconds": "1", "heartbeat_interval_seconds": "1"}
    with live_fleet(tmp_path_factory.mktemp("coordinator"), **settings) as coordinator:
        yield coordinator


@pytest.fixture(scope="session")
def admin_cookies(chromium: Browser, shared_coordinator: LiveFleet) -> list[Any]:
    """The admin's session on the shared coordinator, logged in through the form once."""
    return session_cookies(chromium, shared_coordinator)


@pytest.fixture
def dashboard(page: Page, admin_cookies: list[Any]) -> Page:
    """A page with the admin's session on the shared coordinator (nothing loaded yet)."""
    page.context.add_cookies(admin_cookies)
    return page


@pytest.fixture(scope="module")
def quiet_coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFleet]:
    """A live coordinator for one test module that changes nothing by itself: no heartbeat is
    awaited and the monitor looks every 30 s, so no alert repeats and refreshes the panels.
    A panel refreshing there within a second was refreshed by the change the test made."""
    with live_fleet(tmp_path_factory.mktemp("quiet")) as coordinator:
        yield coordinator


@pytest.fixture(scope="module")
def quiet_cookies(chromium: Browser, quiet_coordinator: LiveFleet) -> list[Any]:
    """The admin's session on the module's quiet coordinator, logged in through the form once."""
    return session_cookies(chromium, quiet_coordinator)


@pytest.fixture
def quiet_dashboard(page: Page, quiet_cookies: list[Any]) -> Page:
    """A page with the admin's session on the module's quiet coordinator (nothing loaded yet)."""
    page.context.add_cookies(quiet_cookies)
    return page


@pytest.fixture(scope="session")
def lan_chromium(chromium: Browser) -> Iterator[Browser]:
    """A second headless Chromium that resolves LAN_HOST to 127.0.0.1: a page from
    http://LAN_HOST:PORT is what a page from a coordinator on another host over plain HTTP is
    (not a secure context: no Web Locks), where one from 127.0.0.1 is trustworthy."""
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = chromium.browser_type.launch(
        executable_path=chromium_executable(),
        headless=True,
        args=[*QUIET_FLAGS, *sandbox, f"--host-resolver-rules=MAP {LAN_HOST} 127.0.0.1"],
    )
    try:
        yield browser
    finally:
        browser.close()
