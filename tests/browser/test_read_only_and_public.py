"""Who may act: a read-only session sees no action button and its actions are refused; the
public dashboard (BUILDCOORD_PUBLIC_DASHBOARD=true) shows every page without logging in, live,
with no action, and refuses an action without a session (401).

The module's coordinator is public and holds something to act on on every page that has
actions (a queued job, an unread message, an open alert, a branch); each test of the absence of
buttons first checks that an operator's session gets some on the same page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from buildcoord.models import Metrics
from live_fleet import ADMIN_TOKEN, LiveFleet, live_fleet, wait_for

from .dashboard import GIB, PAGES, left_of_a_second, open_live, session_cookies

ACTION_PAGES = ("/queue", "/alerts", "/messages", "/branches", "/jobs/<queued>")
SESSION_COOKIE = "buildcoord_session"


@pytest.fixture(scope="module")
def public_coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveFleet]:
    """A coordinator with the public dashboard on (and the monitor stepping every second)."""
    settings = {
        "public_dashboard": "true",
        "monitor_seconds": "1",
        "heartbeat_interval_seconds": "1",
    }
    with live_fleet(tmp_path_factory.mktemp("public"), **settings) as coordinator:
        yield coordinator


@dataclass(frozen=True)
class Held:
    """What there is to act on, and the read-only token."""

    queued_job_id: int
    alert_id: int
    read_token: str


@pytest.fixture(scope="module")
def held(public_coordinator: LiveFleet) -> Held:
    """A queued job, an unread message, an open alert, a branch; a read-only token."""
    agent_token = public_coordinator.register("build1")
    with public_coordinator.client() as operator, public_coordinator.client(agent_token) as agent:
        operator.add_branch("main", repo="/srv/git/product.git", command="make")
        job = operator.submit_job("main", "abc1234", labels=["pool=nobody"])
        operator.send_message(
            sender="build1", recipient="all", type="info", subject="hello", body="there"
        )
        agent.heartbeat("build1", Metrics(disk_free_bytes=GIB, disk_total_bytes=500 * GIB))
        alert_id = wait_for(
            "the disk_low alert",
            lambda: next((a.id for a in operator.list_alerts(rule="disk_low")), None),
            timeout=15,
        )
        read_token = operator.create_token("wall-screen", kind="read").secret
    return Held(job.id, alert_id, read_token)


@pytest.fixture(scope="module")
def read_only_cookies(chromium: Browser, public_coordinator: LiveFleet, held: Held) -> list[Any]:
    """A read-only session, logged in through the form once."""
    return session_cookies(chromium, public_coordinator, held.read_token)


def real_path(path: str, held: Held) -> str:
    """A path with the held job's id put in."""
    return path.replace("<queued>", str(held.queued_job_id))


def action_forms_for(fleet: LiveFleet, path: str, token: str | None) -> int:
    """How many forms that post an action the page's main part has for a session of ``token``
    (None: no session), read from the HTML the coordinator sends."""
    cookies = {SESSION_COOKIE: token} if token else {}
    answer = httpx.get(fleet.url + path, cookies=cookies, follow_redirects=False, timeout=10.0)
    assert answer.status_code == 200, answer.text
    main = answer.text.split("<main", 1)[1]
    return main.count('method="post"')


# --- a read-only session ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ACTION_PAGES)
def test_a_read_only_session_sees_no_action_button_where_an_operator_has_some(
    page: Page,
    public_coordinator: LiveFleet,
    held: Held,
    read_only_cookies: list[Any],
    path: str,
) -> None:
    path = real_path(path, held)
    assert action_forms_for(public_coordinator, path, ADMIN_TOKEN) > 0
    page.context.add_cookies(read_only_cookies)

    open_live(page, public_coordinator, path)

    expect(page.locator(".who")).to_have_text("wall-screen (read-only)")
    expect(page.locator("main form[method=post]")).to_have_count(0)
    expect(page.locator("main button")).to_have_count(0)


def test_a_read_only_sessions_action_with_its_csrf_token_is_refused_and_changes_nothing(
    page: Page, public_coordinator: LiveFleet, held: Held, read_only_cookies: list[Any]
) -> None:
    page.context.add_cookies(read_only_cookies)
    page.goto(f"{public_coordinator.url}/alerts")
    csrf = page.locator("form.logout input[name=csrf]").get_attribute("value")
    assert csrf

    answer = page.request.post(
        f"{public_coordinator.url}/ui/alerts/{held.alert_id}/ack", form={"csrf": csrf}
    )

    assert answer.status == 403
    with public_coordinator.client() as operator:
        assert operator.get_alert(held.alert_id).acknowledged_at is None


# --- the public dashboard ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/jobs/<queued>"])
def test_the_public_dashboard_shows_a_page_live_without_logging_in_and_no_action(
    page: Page, public_coordinator: LiveFleet, held: Held, path: str
) -> None:
    if path in ACTION_PAGES:
        assert action_forms_for(public_coordinator, real_path(path, held), ADMIN_TOKEN) > 0
    path = real_path(path, held)

    response = open_live(page, public_coordinator, path)

    assert response is not None
    assert response.status == 200
    assert page.url == public_coordinator.url + path
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    expect(page.locator("main [hx-post]")).to_have_count(0)


def test_an_action_on_the_public_dashboard_without_a_session_is_refused_with_401(
    page: Page, public_coordinator: LiveFleet, held: Held
) -> None:
    page.goto(f"{public_coordinator.url}/alerts")

    answer = page.request.post(
        f"{public_coordinator.url}/ui/alerts/{held.alert_id}/ack", form={"csrf": "x" * 64}
    )

    assert answer.status == 401
    with public_coordinator.client() as operator:
        assert operator.get_alert(held.alert_id).acknowledged_at is None


def test_the_public_dashboard_shows_a_change_within_a_second_without_a_session(
    page: Page, public_coordinator: LiveFleet, held: Held
) -> None:
    open_live(page, public_coordinator, "/queue")

    with public_coordinator.client() as operator:
        began = time.monotonic()
        job = operator.submit_job("main", "def5678", labels=["pool=nobody"])

    expect(page.locator(f"table.jobs.queued #job-{job.id}")).to_be_visible(
        timeout=left_of_a_second(began)
    )


def test_an_operator_who_logs_in_on_the_public_dashboard_gets_the_actions(
    page: Page, public_coordinator: LiveFleet, held: Held
) -> None:
    page.goto(f"{public_coordinator.url}/queue")
    page.get_by_role("link", name="Log in").click()
    page.wait_for_url(f"{public_coordinator.url}/login?next=/queue")
    page.fill("#token", public_coordinator.admin_token)
    page.get_by_role("button", name="Log in").click()

    page.wait_for_url(f"{public_coordinator.url}/queue")
    expect(page.get_by_role("button", name=f"Cancel job {held.queued_job_id}")).to_be_visible()
