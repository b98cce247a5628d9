"""The browser harness itself: a real headless Chromium reaches a real coordinator."""

from __future__ import annotations

import json

from playwright.sync_api import Page

from buildcoord import __version__
from live_fleet import LiveFleet


def test_a_headless_chromium_loads_a_page_from_a_live_coordinator(
    page: Page, live_coordinator: LiveFleet
) -> None:
    response = page.goto(f"{live_coordinator.url}/api/v1/health")
    assert response is not None
    assert response.status == 200
    body = json.loads(page.locator("pre").inner_text())  # Chromium shows JSON in a <pre>
    assert body["status"] == "ok"
    assert body["version"] == __version__
