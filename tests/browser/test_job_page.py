"""The job page in a real browser: its log follows a running build, and an operator cancels a
job from the queue page while a read-only viewer has no button for it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from live_fleet import LiveFleet

from .dashboard import log_in


def test_the_job_page_follows_the_log_of_a_running_build(
    page: Page, live_coordinator: LiveFleet
) -> None:
    token = live_coordinator.register("follows")
    with live_coordinator.client() as operator:
        operator.add_branch("main", repo="/srv/repo", command="make")
        operator.submit_job("main", "abc1234")
    with live_coordinator.client(token) as agent:
        job = agent.claim_job("follows")
        assert job is not None
        lease = {"server": "follows", "fencing_token": job.fencing_token}
        agent.append_log(job.id, [{"message": "\x1b[32mcompiling\x1b[0m"}], **lease)
        log_in(page, live_coordinator, path=f"/jobs/{job.id}")
        expect(page.locator("#log .entry")).to_have_count(1)
        expect(page.locator("#log .ansi-fg-32")).to_have_text("compiling")
        expect(page.locator("#log .following")).to_be_visible()

        agent.append_log(job.id, [{"message": "linking <main>"}], **lease)
        expect(page.locator("#log .entry").nth(1)).to_contain_text("linking <main>", timeout=3000)

        agent.complete_job(job.id, status="succeeded", **lease)
    expect(page.locator("#panel-job h1 .status")).to_have_text("succeeded", timeout=3000)


def test_an_operator_cancels_a_queued_job_from_the_queue_page(
    page: Page, live_coordinator: LiveFleet
) -> None:
    with live_coordinator.client() as operator:
        job = operator.submit_job("main", "abc1234")
    log_in(page, live_coordinator, path="/queue")

    page.get_by_role("button", name=f"Cancel job {job.id}").click()

    expect(page.locator(f"#job-{job.id}")).to_have_count(0, timeout=3000)
    with live_coordinator.client() as operator:
        assert operator.get_job(job.id).status == "cancelled"


def test_a_read_only_viewer_has_no_cancel_button_and_the_action_url_refuses_them(
    page: Page, live_coordinator: LiveFleet
) -> None:
    with live_coordinator.client() as operator:
        job = operator.submit_job("main", "abc1234")
        viewer = operator.create_token("wall-screen", kind="read").secret
    log_in(page, live_coordinator, viewer, path="/queue")
    expect(page.locator(f"#job-{job.id}")).to_be_visible()
    expect(page.get_by_role("button", name=f"Cancel job {job.id}")).to_have_count(0)

    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    answer = page.request.post(
        f"{live_coordinator.url}/ui/jobs/{job.id}/cancel", form={"csrf": csrf or ""}
    )

    assert answer.status == 403
    with live_coordinator.client() as operator:
        assert operator.get_job(job.id).status == "queued"
