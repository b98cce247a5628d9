"""The dashboard's pages rendered by the real app in process, on both databases: what each
shows, how long lists page, that text is escaped, and what operators and viewers may do."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.config import Settings
from buildcoord.models import Metrics
from inprocess import ADMIN_TOKEN, RegisterAgent

COMMIT = "0123456789abcdef0123456789abcdef01234567"
XSS = "<img src=x onerror=alert(1)>"


def log_in(http: TestClient, token: str = ADMIN_TOKEN) -> str:
    """Log the test client in; return the CSRF token its pages carry."""
    response = http.post("/login", data={"token": token, "next": "/queue"})
    assert response.status_code == 200, response.text
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', response.text)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_every_page_shows_the_fleet_to_a_logged_in_operator(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    agent = register_agent("build1", ["os=debian"])
    agent.client.heartbeat(
        "build1", Metrics(cpu_percent=42.0, disk_free_bytes=2**33, disk_total_bytes=2**35)
    )
    finished = operator.submit_job("main", COMMIT)
    claimed = agent.client.claim_job("build1")
    assert claimed is not None
    assert claimed.id == finished.id
    agent.client.complete_job(
        claimed.id, status="failed", server="build1", fencing_token=claimed.fencing_token
    )
    running = operator.submit_job("main", COMMIT)
    agent.client.claim_job("build1")
    queued = operator.submit_job("main", COMMIT, priority=2)
    operator.send_message(sender="build1", recipient="all", type="warning", subject="disk", body="")
    log_in(http)

    overview = http.get("/").text
    assert "1 / 1" in overview  # servers online
    assert f'href="/jobs/{running.id}"' in overview
    assert "failed" in overview  # the recent build
    servers = http.get("/servers").text
    assert "build1" in servers
    assert "os=debian" in servers
    assert "42 %" in servers
    queue = http.get("/queue").text
    assert f'id="job-{queued.id}"' in queue
    assert f'id="job-{running.id}"' in queue
    assert "Messages" in http.get("/messages").text
    assert "disk" in http.get("/messages").text
    assert "main" in http.get("/branches").text
    assert "Trends" in http.get("/trends").text
    assert "No open alert" in http.get("/alerts").text
    job = http.get(f"/jobs/{finished.id}").text
    assert "failed" in job
    assert COMMIT in job


def test_a_page_without_a_session_sends_the_browser_to_log_in(http: TestClient) -> None:
    response = http.get("/queue?page=2", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/queue%3Fpage%3D2"


def test_hostile_text_in_a_message_is_shown_escaped(http: TestClient, operator: Client) -> None:
    operator.send_message(sender="build1", recipient="all", type="info", subject=XSS, body=XSS)
    log_in(http)

    page = http.get("/messages").text

    assert XSS not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_every_page_forbids_inline_script_by_its_content_security_policy(
    http: TestClient,
) -> None:
    log_in(http)
    for path in ("/", "/servers", "/queue", "/alerts", "/branches", "/messages", "/trends"):
        response = http.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "<script>" not in response.text
        assert " style=" not in response.text
        assert re.findall(r"<script\b[^>]*>", response.text) == [
            '<script src="/static/vendor/htmx.min.js" defer>',
            '<script src="/static/app.js" defer>',
        ]


def test_servers_are_filtered_by_name_or_label_and_paged(
    http: TestClient, operator: Client
) -> None:
    for number in range(60):
        operator.register_server(f"node{number:02d}", ["rack=a" if number < 30 else "rack=b"])
    log_in(http)

    first = http.get("/servers").text
    assert "60 of 60" in first
    assert "node49" in first
    assert "node50" not in first
    assert 'href="/servers?q=&amp;status=&amp;page=2"' in first
    assert "node50" in http.get("/servers?page=2").text
    by_label = http.get("/servers?q=rack%3Db").text
    assert "30 of 60" in by_label
    assert "node29" not in by_label
    assert "No server matches" in http.get("/servers?status=online").text
    assert http.get("/servers?page=0").status_code == 422
    assert http.get("/servers?q=" + "x" * 201).status_code == 422


def test_a_long_log_is_read_a_page_at_a_time_and_followed_while_the_job_runs(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    operator.add_branch("main", repo="/srv/repo", command="make")
    agent = register_agent("build1")
    operator.submit_job("main", COMMIT)
    job = agent.client.claim_job("build1")
    assert job is not None
    lease = {"server": "build1", "fencing_token": job.fencing_token}
    agent.client.append_log(
        job.id, [{"message": f"line {n} \x1b[31mred\x1b[0m"} for n in range(1200)], **lease
    )
    log_in(http)

    page = http.get(f"/jobs/{job.id}").text
    assert page.count('class="entry ') == 500
    assert '<span class="ansi-fg-31">red</span>' in page
    assert f'hx-get="/ui/jobs/{job.id}/log?after=500" hx-trigger="intersect once"' in page
    second = http.get(f"/ui/jobs/{job.id}/log?after=500").text
    assert second.count('class="entry ') == 500
    assert "line 500 " in second
    last = http.get(f"/ui/jobs/{job.id}/log?after=1000").text
    assert last.count('class="entry ') == 200
    assert 'hx-trigger="every 1s"' in last  # the job runs: the page follows it
    agent.client.complete_job(job.id, status="succeeded", **lease)
    done = http.get(f"/ui/jobs/{job.id}/log?after=1200").text
    assert "hx-get" not in done  # finished and read to the end: nothing more to fetch


def test_an_operator_cancels_reprioritizes_acknowledges_and_marks_read_from_the_pages(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    first = operator.submit_job("main", COMMIT)
    second = operator.submit_job("main", COMMIT)
    message = operator.send_message(sender="a", recipient="all", type="info", subject="s", body="")
    csrf = log_in(http)
    htmx = {"HX-Request": "true"}

    answer = http.post(
        f"/ui/jobs/{second.id}/priority", data={"csrf": csrf, "priority": "1"}, headers=htmx
    )
    assert answer.status_code == 200
    assert 'id="heading-queue"' in answer.text
    assert operator.get_job(second.id).priority == 1
    http.post(f"/ui/jobs/{first.id}/cancel", data={"csrf": csrf})
    assert operator.get_job(first.id).status == "cancelled"
    http.post(f"/ui/messages/{message.id}/read", headers={"X-CSRF-Token": csrf})
    assert operator.list_messages()[0].read

    refused = http.post(f"/ui/jobs/{first.id}/retry", data={"csrf": "0" * 64})
    assert refused.status_code == 403
    assert operator.get_job(first.id).status == "cancelled"
    wrong = http.post(
        f"/ui/jobs/{second.id}/priority", data={"csrf": csrf, "priority": "11"}, headers=htmx
    )
    assert "priority" in wrong.text
    assert 'class="error"' in wrong.text
    assert operator.get_job(second.id).priority == 1


def test_a_read_only_viewer_sees_no_actions_and_cannot_act(
    http: TestClient, operator: Client
) -> None:
    job = operator.submit_job("main", COMMIT)
    viewer = operator.create_token("wall-screen", kind="read").secret
    csrf = log_in(http, viewer)

    queue = http.get("/queue").text
    assert f'id="job-{job.id}"' in queue
    assert "/cancel" not in queue
    assert "(read-only)" in queue
    answer = http.post(
        f"/ui/jobs/{job.id}/cancel", data={"csrf": csrf}, headers={"HX-Request": "true"}
    )
    assert 'class="error"' in answer.text
    assert operator.get_job(job.id).status == "queued"


class TestAPublicDashboard:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(admin_token=ADMIN_TOKEN, public_dashboard=True)

    def test_shows_pages_without_a_login_and_offers_no_action(
        self, http: TestClient, operator: Client
    ) -> None:
        job = operator.submit_job("main", COMMIT)

        queue = http.get("/queue")

        assert queue.status_code == 200
        assert f'id="job-{job.id}"' in queue.text
        assert "/cancel" not in queue.text
        assert "Log in" in queue.text
        assert http.post(f"/ui/jobs/{job.id}/cancel", data={}).status_code == 401
