"""Every text is escaped, and the Content-Security-Policy holds: no inline script or style.

Hostile text goes in wherever the coordinator accepts free text or a name with markup
characters: a message's subject and body, a branch name (git's ref rules allow " < > but no
space), a quarantine reason (an attribute on the servers page), a cancel reason, a build's log
line with ANSI colours, the login form's ``next``, an error message. Each must show as the very
text it is, with no element made of it. The CSP would stop an injected script from running, so
the DOM itself is checked, not only that no dialog opened.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from buildcoord.errors import InvalidInput
from buildcoord.models import Metrics
from live_fleet import LiveFleet, git, make_repository, wait_for

from .dashboard import GIB, PAGES, left_of_a_second, open_live

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
BRANCH = 'feature/"><script>alert(1)</script>'
"""Quotes and angle brackets are within git's ref rules; a space is not (so IMG is no branch)."""
ATTRIBUTE_BREAKER = '"><img src=x onerror=alert(3)>'
ANSI_LINE = f"\x1b[31m{IMG}\x1b[0m plain {SCRIPT}"


@dataclass(frozen=True)
class Seeded:
    """What this module put in the shared coordinator: hostile text everywhere it can go."""

    message_id: int
    queued_job_id: int
    running_job_id: int
    cancelled_job_id: int
    alert_id: int


@pytest.fixture(scope="module")
def seeded(shared_coordinator: LiveFleet, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Servers, jobs, a branch, a message, a log line and an open alert, all hostile."""
    fleet = shared_coordinator
    repo = tmp_path_factory.mktemp("origin") / "repo"
    make_repository(repo, {"build.sh": "#!/bin/sh\necho built\n"})
    git(repo, "branch", BRANCH)
    agent_token = fleet.register("build1")
    fleet.register("held")
    with fleet.client() as operator, fleet.client(agent_token) as agent:
        operator.add_branch(BRANCH, repo=str(repo), command="./build.sh", auto_build=False)
        operator.quarantine_server("held", ATTRIBUTE_BREAKER)
        message = operator.send_message(
            sender="build1", recipient="all", type="warning", subject=IMG, body=SCRIPT
        )
        queued = operator.submit_job(BRANCH, "abc1234", labels=["pool=nobody"])
        running = operator.submit_job(BRANCH, "abc1234", priority=1, labels=["server=build1"])
        claimed = agent.claim_job("build1")
        assert claimed is not None
        assert claimed.id == running.id
        agent.append_log(
            running.id,
            [{"message": ANSI_LINE, "kind": "output"}],
            server="build1",
            fencing_token=claimed.fencing_token,
        )
        cancelled = operator.submit_job("main", "abc1234", labels=["pool=nobody"])
        operator.cancel_job(cancelled.id, reason=ATTRIBUTE_BREAKER)
        agent.heartbeat("build1", Metrics(disk_free_bytes=GIB, disk_total_bytes=500 * GIB))
        alert_id = wait_for(
            "the disk_low alert",
            lambda: next(
                (a.id for a in operator.list_alerts(rule="disk_low") if a.subject == "build1"),
                None,
            ),
            timeout=15,
        )
    return Seeded(message.id, queued.id, running.id, cancelled.id, alert_id)


@dataclass
class Watched:
    """What the page said on its console and what dialogs it opened."""

    console: list[ConsoleMessage]
    dialogs: list[str]

    def csp_violations(self) -> list[str]:
        """The console's reports of a Content-Security-Policy violation."""
        return [
            message.text for message in self.console if "Content Security Policy" in message.text
        ]


@pytest.fixture
def watched(page: Page) -> Watched:
    """The page's console and dialogs, from its first load on (a dialog is dismissed)."""
    found = Watched([], [])

    def on_dialog(dialog: Dialog) -> None:
        found.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", lambda message: found.console.append(message))
    page.on("dialog", on_dialog)
    return found


@pytest.fixture
def signed_in(dashboard: Page, watched: Watched, seeded: Seeded) -> Page:
    """The watched page with the admin's session on the seeded coordinator."""
    return dashboard


def assert_no_markup_was_made(page: Page, watched: Watched) -> None:
    """No element came out of the hostile text: no image, no script but the page's own files,
    no event-handler attribute; and no dialog opened."""
    expect(page.locator("img")).to_have_count(0)
    scripts = page.locator("script").evaluate_all("(all) => all.map((s) => s.src)")
    assert all(source.startswith(page.url.split("/", 3)[0]) for source in scripts), scripts
    assert all("/static/" in source for source in scripts), scripts
    handlers = page.evaluate(
        "() => [...document.querySelectorAll('*')].flatMap((e) =>"
        " [...e.attributes].filter((a) => a.name.startsWith('on')).map((a) => a.name))"
    )
    assert handlers == []
    assert watched.dialogs == []


# --- escaping -------------------------------------------------------------------------------


def test_a_message_subject_and_body_with_markup_show_as_text(
    signed_in: Page, seeded: Seeded, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    page.goto(f"{shared_coordinator.url}/messages")

    message = page.locator(f"#message-{seeded.message_id}")
    expect(message.locator(".subject")).to_have_text(IMG)
    expect(message.locator(".body")).to_have_text(SCRIPT)
    assert_no_markup_was_made(page, watched)


def test_a_message_with_markup_that_arrives_live_shows_as_text(
    signed_in: Page, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    open_live(page, shared_coordinator, "/messages")
    subject = "<svg onload=alert(4)>live</svg>"

    with shared_coordinator.client() as operator:
        began = time.monotonic()
        message = operator.send_message(
            sender="build1", recipient="build1", type="info", subject=subject, body=IMG
        )

    shown = page.locator(f"#message-{message.id}")
    expect(shown.locator(".subject")).to_have_text(subject, timeout=left_of_a_second(began))
    expect(shown.locator(".body")).to_have_text(IMG)
    expect(page.locator("svg")).to_have_count(0)
    assert_no_markup_was_made(page, watched)


def test_the_branch_rules_accept_quotes_and_angle_brackets_as_git_does_but_no_space(
    shared_coordinator: LiveFleet, tmp_path: Path
) -> None:
    for name, git_accepts in ((BRANCH, True), (IMG, False)):
        checked = subprocess.run(
            ["git", "check-ref-format", "--branch", name], capture_output=True, check=False
        )
        assert (checked.returncode == 0) is git_accepts, name
    with shared_coordinator.client() as operator:
        assert operator.submit_job(BRANCH, "abc1234", labels=["pool=nobody"]).branch == BRANCH
        with pytest.raises(InvalidInput, match="contains a space"):
            operator.submit_job(IMG, "abc1234")


def test_a_branch_name_with_markup_shows_as_text_on_the_queue(
    signed_in: Page, seeded: Seeded, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    page.goto(f"{shared_coordinator.url}/queue")

    expect(page.locator(f"table.jobs.queued #job-{seeded.queued_job_id} .branch")).to_have_text(
        BRANCH
    )
    expect(page.locator(f"table.jobs.running #job-{seeded.running_job_id} .branch")).to_have_text(
        BRANCH
    )
    assert_no_markup_was_made(page, watched)


def test_a_branch_name_with_markup_shows_as_text_among_the_overviews_running_builds(
    signed_in: Page, seeded: Seeded, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    page.goto(f"{shared_coordinator.url}/")

    expect(page.locator(f"#running-{seeded.running_job_id} .branch")).to_have_text(BRANCH)
    assert_no_markup_was_made(page, watched)


def test_a_branch_name_with_markup_shows_as_text_in_cells_and_attributes_of_the_branches_page(
    signed_in: Page, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    page.goto(f"{shared_coordinator.url}/branches")

    row = page.locator("table.branches tbody tr", has=page.locator("th.branch"))
    expect(row.locator("th.branch")).to_have_text(BRANCH)
    expect(row.locator("input[name=branch]")).to_have_value(BRANCH)
    expect(row.get_by_role("button", name=f"Build new commits of {BRANCH}")).to_be_visible()
    assert_no_markup_was_made(page, watched)


def test_a_job_page_shows_a_hostile_branch_and_log_line_as_text_with_the_logs_colour(
    signed_in: Page, seeded: Seeded, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    page.goto(f"{shared_coordinator.url}/jobs/{seeded.running_job_id}")

    expect(page.locator("#panel-job dd.branch")).to_have_text(BRANCH)
    line = page.locator("#log .entry .text").filter(has_text="plain")
    expect(line).to_have_text(f"{IMG} plain {SCRIPT}")
    expect(line.locator("span.ansi-fg-31")).to_have_text(IMG)
    assert_no_markup_was_made(page, watched)


def test_a_cancel_reason_with_markup_shows_as_text_on_the_job_page(
    signed_in: Page, seeded: Seeded, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    page.goto(f"{shared_coordinator.url}/jobs/{seeded.cancelled_job_id}")

    reason = page.locator("#panel-job .facts div", has_text="Reason").locator("dd")
    expect(reason).to_have_text(ATTRIBUTE_BREAKER)
    assert_no_markup_was_made(page, watched)


def test_a_quarantine_reason_with_markup_stays_whole_in_its_title_attribute(
    signed_in: Page, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    page.goto(f"{shared_coordinator.url}/servers")

    mark = page.locator("#server-held .status.quarantined")
    expect(mark).to_have_attribute("title", ATTRIBUTE_BREAKER)
    expect(mark).to_have_text("quarantined")
    assert_no_markup_was_made(page, watched)


def test_a_hostile_next_on_the_login_page_stays_text_in_its_field(
    page: Page, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    target = '/queue?"><script>alert(5)</script><img/src=x/onerror=alert(1)>'
    page.goto(f"{shared_coordinator.url}/login?next={quote(target)}")

    expect(page.locator("input[name=next]")).to_have_value(target)
    assert_no_markup_was_made(page, watched)


def test_an_error_page_repeats_a_hostile_name_as_text(
    signed_in: Page, watched: Watched, shared_coordinator: LiveFleet
) -> None:
    page = signed_in
    response = page.goto(f"{shared_coordinator.url}/ui/panel/{quote(IMG)}")

    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("alert")).to_have_text(f"no panel {IMG!r}")
    assert_no_markup_was_made(page, watched)


# --- the Content-Security-Policy ------------------------------------------------------------


JOB_PAGE = "/jobs/<a running job>"


@pytest.mark.parametrize("path", [*PAGES, JOB_PAGE, "/login", "/jobs/999999"])
def test_a_page_has_a_csp_without_inline_script_or_style_and_no_violation(
    page: Page,
    watched: Watched,
    shared_coordinator: LiveFleet,
    seeded: Seeded,
    admin_cookies: list[Any],
    path: str,
) -> None:
    if path == JOB_PAGE:
        path = f"/jobs/{seeded.running_job_id}"
    if path != "/login":
        page.context.add_cookies(admin_cookies)
    if path in ("/login", "/jobs/999999"):
        response = page.goto(shared_coordinator.url + path)
    else:
        # The stream's first refresh swapped in: fragments are checked too.
        response = open_live(page, shared_coordinator, path)
    assert response is not None

    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().partition(" ")[::2] for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "unsafe" not in policy
    expect(page.locator("script:not([src])")).to_have_count(0)
    expect(page.locator("[style]")).to_have_count(0)
    expect(page.locator("style")).to_have_count(0)
    assert watched.csp_violations() == []
