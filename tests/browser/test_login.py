"""Logging in to the dashboard, being sent to the form without a session, logging out; the
servers page listing the fleet."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from buildcoord.models import Metrics
from live_fleet import LiveFleet

from .dashboard import GIB, NAVIGATION, log_in, settled


def test_logging_in_through_the_form_with_the_admin_token_shows_the_overview(
    page: Page, shared_coordinator: LiveFleet
) -> None:
    page.goto(f"{shared_coordinator.url}/login")
    page.fill("#token", shared_coordinator.admin_token)
    page.get_by_role("button", name="Log in").click()

    page.wait_for_url(f"{shared_coordinator.url}/")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.locator(".who")).to_contain_text("admin")
    navigation = page.get_by_role("navigation", name="Sections").get_by_role("link")
    expect(navigation).to_have_text(list(NAVIGATION))
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_a_page_without_a_session_sends_the_browser_to_the_login_form_and_back_after(
    page: Page, shared_coordinator: LiveFleet
) -> None:
    page.goto(f"{shared_coordinator.url}/queue")
    page.wait_for_url(f"{shared_coordinator.url}/login?next=/queue")

    page.fill("#token", shared_coordinator.admin_token)
    page.get_by_role("button", name="Log in").click()

    page.wait_for_url(f"{shared_coordinator.url}/queue")
    expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible()


def test_a_wrong_token_is_refused_on_the_form_with_a_reason(
    page: Page, shared_coordinator: LiveFleet
) -> None:
    page.goto(f"{shared_coordinator.url}/login")
    page.fill("#token", "bc_not-a-token")
    with page.expect_response(f"{shared_coordinator.url}/login") as answer:
        page.get_by_role("button", name="Log in").click()

    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("That token is not valid (or was revoked).")
    assert page.context.cookies() == []


def test_an_agents_token_cannot_log_in(page: Page, shared_coordinator: LiveFleet) -> None:
    token = shared_coordinator.register("login-agent")

    page.goto(f"{shared_coordinator.url}/login")
    page.fill("#token", token)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("alert")).to_contain_text("That is an agent's token")
    assert page.context.cookies() == []


def test_logging_out_ends_the_session(dashboard: Page, shared_coordinator: LiveFleet) -> None:
    dashboard.goto(f"{shared_coordinator.url}/")
    dashboard.get_by_role("button", name="Log out").click()
    dashboard.wait_for_url(f"{shared_coordinator.url}/login")
    assert dashboard.context.cookies() == []

    dashboard.goto(f"{shared_coordinator.url}/servers")
    dashboard.wait_for_url(f"{shared_coordinator.url}/login?next=/servers")


def test_the_servers_page_lists_every_server_with_its_status_and_labels(
    page: Page, shared_coordinator: LiveFleet
) -> None:
    log_in(page, shared_coordinator, path="/servers")
    shared_coordinator.register("list-linux", ["os=linux", "arch=x86_64"])
    token = shared_coordinator.register("list-mac", ["os=macos"])
    with shared_coordinator.client(token) as agent:
        figures = Metrics(cpu_percent=12.0, disk_free_bytes=80 * GIB, disk_total_bytes=100 * GIB)
        agent.heartbeat("list-mac", figures)  # stale 3 s later: the page is read at once
    page.reload()

    linux = page.locator("#server-list-linux")
    expect(linux.get_by_role("rowheader")).to_have_text("list-linux")
    expect(linux).to_have_attribute("data-status", "offline")
    expect(linux.locator(".label")).to_have_text(["arch=x86_64", "os=linux"])
    mac = page.locator("#server-list-mac")
    expect(mac.get_by_role("rowheader")).to_have_text("list-mac")
    expect(mac).to_have_attribute("data-status", "online")
    expect(mac.locator(".label")).to_have_text(["os=macos"])
    expect(mac).to_contain_text("12 %")


def test_a_page_whose_session_ended_in_another_tab_sends_the_browser_to_log_in(
    dashboard: Page, shared_coordinator: LiveFleet
) -> None:
    url = shared_coordinator.url
    dashboard.goto(f"{url}/queue")
    expect(dashboard.locator("#connection")).to_have_attribute("data-state", "live")
    other_tab = dashboard.context.new_page()
    other_tab.goto(f"{url}/")
    other_tab.get_by_role("button", name="Log out").click()
    other_tab.wait_for_url(f"{url}/login")

    # Either the page's stream notices first, or the queue panel's refresh after this job
    # is refused: whichever comes first must send the page to log in, never swap the login
    # form into a panel.
    with shared_coordinator.client() as operator:
        operator.submit_job("main", "abc1234")
    expect(dashboard).to_have_url(f"{url}/login?next=/queue", timeout=15_000)
    settled(dashboard)
    expect(dashboard.locator("#panel-queue #token")).to_have_count(0, timeout=1000)


def test_an_operators_action_is_refused_with_403_without_the_pages_csrf_token(
    dashboard: Page, shared_coordinator: LiveFleet
) -> None:
    url = shared_coordinator.url
    with shared_coordinator.client() as operator:
        message = operator.send_message(
            sender="csrf-check", recipient="all", type="info", subject="csrf", body=""
        )
    dashboard.goto(f"{url}/messages")
    expect(dashboard.get_by_role("button", name=f"Mark message {message.id} read")).to_be_visible()

    refused = dashboard.request.post(f"{url}/ui/messages/{message.id}/read", form={})
    with shared_coordinator.client() as operator:
        assert refused.status == 403
        assert not operator.get_message(message.id).read

        csrf = dashboard.locator("form.logout input[name=csrf]").get_attribute("value")
        done = dashboard.request.post(
            f"{url}/ui/messages/{message.id}/read", form={"csrf": csrf or ""}
        )
        assert done.ok
        assert operator.get_message(message.id).read
