"""The dashboard on a 390 px wide phone (no horizontal scroll on any page) and by keyboard alone
(Tab reaches the navigation and every action button; Enter on "Acknowledge" acknowledges).

The module's coordinator holds a small fleet of ordinary size: servers with labels and figures,
jobs queued, running, blocked, finished and cancelled, a branch, messages and an open alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from buildcoord.models import Metrics
from live_fleet import LiveFleet, wait_for

from .dashboard import GIB, NAVIGATION, PAGES, focus_trail, open_live, scroll_width

PHONE = {"width": 390, "height": 844}

MAX_TABS = 80
"""Tab presses a test makes at most (the busiest page here has about 40 stops)."""


@dataclass(frozen=True)
class Fleet:
    """What the module's coordinator holds that a test looks for."""

    running_job_id: int
    cancelled_job_id: int
    alert_id: int


@pytest.fixture(scope="module")
def fleet(watched_coordinator: LiveFleet) -> Fleet:
    """An ordinary fleet: two servers, a branch, jobs in every state, messages, an open alert."""
    coordinator = watched_coordinator
    linux = coordinator.register("build-linux-01", ["os=linux", "arch=x86_64", "pool=release"])
    coordinator.register("build-mac-01", ["os=macos", "arch=arm64"])
    with coordinator.client() as operator, coordinator.client(linux) as agent:
        operator.add_branch("main", repo="/srv/git/product.git", command="make dist")
        agent.heartbeat(
            "build-linux-01",
            Metrics(
                cpu_percent=63.0,
                load_1m=3.2,
                memory_used_bytes=11 * GIB,
                memory_total_bytes=32 * GIB,
                disk_free_bytes=GIB,
                disk_total_bytes=500 * GIB,
            ),
            labels=["docker", "cores=16"],
        )
        finished = operator.submit_job("main", "9fceb02d0ae598e95dc970b74767f19372d61af8")
        claimed = agent.claim_job("build-linux-01")
        assert claimed is not None
        assert claimed.id == finished.id
        lease = {"server": "build-linux-01", "fencing_token": claimed.fencing_token}
        agent.complete_job(finished.id, status="succeeded", exit_code=0, duration=312.0, **lease)
        running = operator.submit_job("main", "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12")
        claimed = agent.claim_job("build-linux-01")
        assert claimed is not None
        assert claimed.id == running.id
        lease = {"server": "build-linux-01", "fencing_token": claimed.fencing_token}
        agent.append_log(running.id, [{"message": "make dist", "kind": "command"}], **lease)
        queued = operator.submit_job("release/2.4", "0123456789abcdef0123456789abcdef01234567")
        operator.submit_job(
            "main", "fedcba9876543210fedcba9876543210fedcba98", depends_on=[queued.id]
        )
        cancelled = operator.submit_job(
            "feature/faster-linking", "1111111111222222222233333333334444444444"
        )
        operator.cancel_job(cancelled.id, reason="superseded by a newer commit")
        operator.send_message(
            sender="build-linux-01",
            recipient="all",
            type="warning",
            subject="Disk almost full on build-linux-01",
            body="Only 1 GiB left in /var/lib/buildcoord; old artifacts should go.",
        )
        operator.send_message(
            sender="build-mac-01",
            recipient="build-linux-01",
            type="request",
            subject="Can you take the release build tonight?",
            body="I am being re-imaged.",
            ack_required=True,
        )
        alert_id = wait_for(
            "the disk_low alert",
            lambda: next((a.id for a in operator.list_alerts(rule="disk_low")), None),
            timeout=15,
        )
    return Fleet(running.id, cancelled.id, alert_id)


@pytest.fixture
def phone(chromium: Browser, watched_admin_cookies: list[Any], fleet: Fleet) -> Iterator[Page]:
    """A page 390 px wide with the admin's session on the module's coordinator."""
    context = chromium.new_context(viewport=PHONE)
    context.add_cookies(watched_admin_cookies)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def signed_in(watched_dashboard: Page, fleet: Fleet) -> Page:
    """A page of desktop size with the admin's session on the module's coordinator."""
    return watched_dashboard


JOB_PAGES = ("/jobs/<running>", "/jobs/<cancelled>")


def real_path(path: str, fleet: Fleet) -> str:
    """A path with the fleet's job ids put in."""
    return path.replace("<running>", str(fleet.running_job_id)).replace(
        "<cancelled>", str(fleet.cancelled_job_id)
    )


@pytest.mark.parametrize("path", [*PAGES, *JOB_PAGES, "/login"])
def test_a_page_fits_a_390_px_wide_screen_without_horizontal_scrolling(
    phone: Page, watched_coordinator: LiveFleet, fleet: Fleet, path: str
) -> None:
    if path == "/login":
        phone.context.clear_cookies()
        phone.goto(watched_coordinator.url + path)
    else:
        open_live(phone, watched_coordinator, real_path(path, fleet))
    expect(phone.locator("main")).to_be_visible()

    assert scroll_width(phone) <= PHONE["width"]


def button_names(page: Page) -> list[str]:
    """The accessible names of the buttons in the page's main part (aria-label, else text)."""
    names: list[str] = page.locator("main button").evaluate_all(
        "(all) => all.map((b) => (b.getAttribute('aria-label') || b.textContent).trim())"
    )
    return names


@pytest.mark.parametrize("path", ["/queue", "/alerts", "/messages", "/branches", "/jobs/<running>"])
def test_tab_reaches_every_navigation_link_and_every_action_button(
    signed_in: Page, watched_coordinator: LiveFleet, fleet: Fleet, path: str
) -> None:
    open_live(signed_in, watched_coordinator, real_path(path, fleet))
    buttons = button_names(signed_in)
    assert buttons, "the page has no button to reach"

    trail = focus_trail(signed_in, MAX_TABS)

    assert [name for name in NAVIGATION if name not in trail] == []
    assert [name for name in buttons if name not in trail] == []


def test_enter_on_acknowledge_acknowledges_the_alert(
    signed_in: Page, watched_coordinator: LiveFleet, fleet: Fleet
) -> None:
    open_live(signed_in, watched_coordinator, "/alerts")
    acknowledge = signed_in.get_by_role("button", name=f"Acknowledge alert {fleet.alert_id}")
    expect(acknowledge).to_be_visible()
    for _ in range(MAX_TABS):
        signed_in.keyboard.press("Tab")
        if acknowledge.evaluate("(button) => button === document.activeElement"):
            break
    expect(acknowledge).to_be_focused()

    signed_in.keyboard.press("Enter")

    row = signed_in.locator(f"#alert-{fleet.alert_id}")
    expect(row).to_contain_text("acknowledged by operator:admin")
    expect(acknowledge).to_have_count(0)
    with watched_coordinator.client() as operator:
        assert operator.get_alert(fleet.alert_id).acknowledged_at is not None
