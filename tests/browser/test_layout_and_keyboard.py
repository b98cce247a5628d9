"""The dashboard on a 390 px wide phone (no horizontal scroll on any page) and by keyboard alone
(Tab reaches the navigation and every action button; Enter on "Acknowledge" acknowledges).

The shared coordinator holds, besides what other tests made, a small fleet of ordinary size:
servers with labels and figures, jobs queued, running, blocked, finished and cancelled, a
branch, messages and an open alert; and a server, labels, a branch and a subject as long as the
coordinator accepts, with no place to break a line in them: they must not push a page wider
than the phone either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from buildcoord.models import Metrics
from live_fleet import LiveFleet, wait_for

from .dashboard import (
    GIB,
    NAVIGATION,
    PAGES,
    focus_trail,
    open_live,
    refreshes_held,
    scroll_width,
)

PHONE = {"width": 390, "height": 844}

LINUX = "build-linux-01"

MAX_TABS = 200
"""Tab presses a test makes at most (a busy page of the shared coordinator has about 60 stops)."""


LONG_SERVER = "ci_runner_eu_west_1.rack_12.node_07.build.example.internal_00001"
"""64 characters, the most a server name may have; dots and underscores give no line break."""
LONG_LABEL = (
    "toolchain=gcc_13.2.0+binutils_2.41+glibc_2.38+linux_headers_6.6.8+python_3.12.1+rust_1.75.0"
    "+gdb_14.1"
)
LONG_SUBJECT = "Nightly_release_build_of_product_" + "x" * 67
LONG_BRANCH = "release/" + "2024.12.x_" * 24 + "hotfix"


def long_names(coordinator: LiveFleet) -> int:
    """A server, labels, a branch and a subject as long as may be, none with a place to break a
    line; return the id of the job running on that server."""
    assert (len(LONG_SERVER), len(LONG_LABEL), len(LONG_SUBJECT)) == (64, 100, 100)
    assert len(LONG_BRANCH) <= 255
    token = coordinator.register(LONG_SERVER, [LONG_LABEL])
    with coordinator.client() as operator, coordinator.client(token) as agent:
        operator.add_branch(LONG_BRANCH, repo="/srv/git/product.git", command="make")
        low = Metrics(cpu_percent=50.0, disk_free_bytes=GIB, disk_total_bytes=500 * GIB)
        agent.heartbeat(LONG_SERVER, low, labels=[LONG_LABEL.replace("toolchain", "found")])
        running = operator.submit_job(LONG_BRANCH, "abc1234", priority=1, labels=[LONG_LABEL])
        claimed = agent.claim_job(LONG_SERVER)
        assert claimed is not None
        assert claimed.id == running.id
        operator.submit_job(LONG_BRANCH, "def5678", labels=[LONG_LABEL, "pool=nobody"])
        operator.send_message(
            sender=LONG_SERVER, recipient="all", type="info", subject=LONG_SUBJECT, body=""
        )
        wait_for(
            "the disk_low alert of the long-named server",
            lambda: [a for a in operator.list_alerts(rule="disk_low") if a.subject == LONG_SERVER],
            timeout=15,
        )
    return running.id


@dataclass(frozen=True)
class Fleet:
    """What the module put in the shared coordinator that a test looks for."""

    running_job_id: int
    cancelled_job_id: int
    long_named_job_id: int
    alert_id: int


@pytest.fixture(scope="module")
def fleet(shared_coordinator: LiveFleet) -> Fleet:
    """An ordinary fleet (two servers, a branch, jobs in every state, messages, an open alert)
    and a server with the longest names."""
    coordinator = shared_coordinator
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
        mine = {"priority": 1, "labels": ["server=build-linux-01"]}  # before other tests' jobs
        finished = operator.submit_job("main", "9fceb02d0ae598e95dc970b74767f19372d61af8", **mine)
        claimed = agent.claim_job("build-linux-01")
        assert claimed is not None
        assert claimed.id == finished.id
        lease = {"server": "build-linux-01", "fencing_token": claimed.fencing_token}
        agent.complete_job(finished.id, status="succeeded", exit_code=0, duration=312.0, **lease)
        running = operator.submit_job("main", "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12", **mine)
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
            lambda: next(
                (a.id for a in operator.list_alerts(rule="disk_low") if a.subject == LINUX), None
            ),
            timeout=15,
        )
    return Fleet(running.id, cancelled.id, long_names(coordinator), alert_id)


@pytest.fixture
def phone(chromium: Browser, admin_cookies: list[Any], fleet: Fleet) -> Iterator[Page]:
    """A page 390 px wide with the admin's session on the shared coordinator."""
    context = chromium.new_context(viewport=PHONE)
    context.add_cookies(admin_cookies)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def signed_in(dashboard: Page, fleet: Fleet) -> Page:
    """A page of desktop size with the admin's session on the shared coordinator."""
    return dashboard


JOB_PAGES = ("/jobs/<running>", "/jobs/<cancelled>", "/jobs/<long-named>")


def real_path(path: str, fleet: Fleet) -> str:
    """A path with the fleet's job ids put in."""
    ids = {
        "<running>": fleet.running_job_id,
        "<cancelled>": fleet.cancelled_job_id,
        "<long-named>": fleet.long_named_job_id,
    }
    for mark, job_id in ids.items():
        path = path.replace(mark, str(job_id))
    return path


@pytest.mark.parametrize("path", [*PAGES, *JOB_PAGES, "/login"])
def test_a_page_fits_a_390_px_wide_screen_without_horizontal_scrolling(
    phone: Page, shared_coordinator: LiveFleet, fleet: Fleet, path: str
) -> None:
    if path == "/login":
        phone.context.clear_cookies()
        phone.goto(shared_coordinator.url + path)
    else:
        open_live(phone, shared_coordinator, real_path(path, fleet))
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
    signed_in: Page, shared_coordinator: LiveFleet, fleet: Fleet, path: str
) -> None:
    open_live(signed_in, shared_coordinator, real_path(path, fleet))
    with refreshes_held(signed_in):
        buttons = button_names(signed_in)
        assert buttons, "the page has no button to reach"

        trail = focus_trail(signed_in, [*NAVIGATION, *buttons], most=MAX_TABS)

    assert [name for name in NAVIGATION if name not in trail] == []
    assert [name for name in buttons if name not in trail] == []


def test_enter_on_acknowledge_acknowledges_the_alert(
    signed_in: Page, shared_coordinator: LiveFleet, fleet: Fleet
) -> None:
    open_live(signed_in, shared_coordinator, "/alerts")
    acknowledge = signed_in.get_by_role("button", name=f"Acknowledge alert {fleet.alert_id}")
    with refreshes_held(signed_in):
        acknowledge.focus()  # Tab reaches it: the test above
        expect(acknowledge).to_be_focused()

        signed_in.keyboard.press("Enter")

        row = signed_in.locator(f"#alert-{fleet.alert_id}")
        expect(row).to_contain_text("acknowledged by operator:admin")
    expect(acknowledge).to_have_count(0)
    with shared_coordinator.client() as operator:
        assert operator.get_alert(fleet.alert_id).acknowledged_at is not None
