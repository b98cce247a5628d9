"""Open pages say when they have lost the coordinator and reconnect by themselves after a
restart, then show a change made after it within a second: the tab that holds the live stream
and a tab that hears it through that one.

The coordinator is stopped by its pid (SIGTERM) and started again on the same port with the same
database; the page is never reloaded (a mark left in its window must survive).
"""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from live_fleet import LiveFleet

from .dashboard import left_of_a_second, log_in, open_live

RECONNECT_MS = 15_000
"""The stream retries after 0.5, 1, 2, 4 s...: a coordinator back within seconds is found in
well under this."""


def leave_mark(page: Page) -> None:
    """Mark the page's window, to tell later that the page was not reloaded."""
    page.evaluate("() => { window.buildcoordTestMark = 'not reloaded'; }")


def count_refreshes_after_each_open(page: Page, panel: str) -> None:
    """Count, in the page, the panel's refreshes since the connection last turned live."""
    page.evaluate(
        """(panel) => {
            window.buildcoordRefreshes = 0;
            const connection = document.getElementById("connection");
            new MutationObserver(() => {
                if (connection.dataset.state === "live") window.buildcoordRefreshes = 0;
            }).observe(connection, { attributes: true, attributeFilter: ["data-state"] });
            document.addEventListener("htmx:afterSwap", (event) => {
                if (event.target.id === panel) window.buildcoordRefreshes += 1;
            });
        }""",
        panel,
    )


def still_marked(page: Page) -> bool:
    """Whether the window still holds the mark (no reload since)."""
    mark = page.evaluate("() => window.buildcoordTestMark")
    return bool(mark == "not reloaded")


def test_open_pages_say_when_they_are_disconnected_and_reconnect_by_themselves_after_a_restart(
    live_coordinator: LiveFleet, page: Page
) -> None:
    port = live_coordinator.port
    log_in(page, live_coordinator)
    open_live(page, live_coordinator, "/")
    other_tab = page.context.new_page()  # it hears the stream through the first tab
    open_live(other_tab, live_coordinator, "/queue")
    tabs = ((page, "panel-overview"), (other_tab, "panel-queue"))
    for tab, panel in tabs:
        leave_mark(tab)
        count_refreshes_after_each_open(tab, panel)
        expect(tab.locator("#connection")).to_have_text("Live")
    expect(page.locator("#queue-depth")).to_have_text("0 queued")

    live_coordinator.stop_coordinator()
    for tab, _panel in tabs:
        connection = tab.locator("#connection")
        expect(connection).to_have_attribute("data-state", "down")
        expect(connection).to_have_text("Disconnected — reconnecting…")
        expect(tab.get_by_role("heading", level=1)).to_be_visible()
    live_coordinator.start_coordinator()

    assert live_coordinator.port == port
    for tab, _panel in tabs:
        connection = tab.locator("#connection")
        expect(connection).to_have_attribute("data-state", "live", timeout=RECONNECT_MS)
        expect(connection).to_have_text("Live")
        # The reopened stream first names every panel: the change below must come after that
        # catch-up refresh, so that only the stream's next event can bring it.
        tab.wait_for_function("() => window.buildcoordRefreshes >= 1")
    with live_coordinator.client() as operator:
        began = time.monotonic()
        job = operator.submit_job("main", "abc1234")
    expect(page.locator("#queue-depth")).to_have_text("1 queued", timeout=left_of_a_second(began))
    expect(other_tab.locator(f"table.jobs.queued #job-{job.id}")).to_be_visible(
        timeout=left_of_a_second(began)
    )
    assert still_marked(page)
    assert still_marked(other_tab)
