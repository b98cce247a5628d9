"""/api/v1/jobs: the queue through HTTP, and bad input that must change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.models import Job
from inprocess import ADMIN_TOKEN, API, Agent, RegisterAgent, bearer, error_of
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)
JOB: dict[str, Any] = {"branch": "main", "commit": "abc1234"}


def claimed(agent: Agent) -> Job:
    """Claim the next job as agent, insisting there is one."""
    job = agent.client.claim_job(agent.name)
    assert job is not None
    return job


# --- the main paths ---------------------------------------------------------------------------


def test_submitting_a_job_returns_it_queued(http: TestClient, clock: FakeClock) -> None:
    response = http.post(
        f"{API}/jobs",
        json={**JOB, "priority": 2, "labels": ["mvn", "os=debian"]},
        headers=OPERATOR,
    )
    assert response.status_code == 201
    job = response.json()
    assert job["id"] >= 1
    assert job["status"] == "queued"
    assert job["branch"] == "main"
    assert job["commit"] == "abc1234"
    assert job["priority"] == 2
    assert job["labels"] == ["mvn", "os=debian"]
    assert job["attempt"] == 1
    assert job["server"] is None
    assert job["created_at"].startswith(clock.now().strftime("%Y-%m-%dT%H:%M:%S"))


def test_submitting_a_job_defaults_to_priority_5(http: TestClient) -> None:
    assert http.post(f"{API}/jobs", json=JOB, headers=OPERATOR).json()["priority"] == 5


def test_a_job_waits_for_its_dependencies(http: TestClient, operator: Client) -> None:
    first = operator.submit_job("main", "abc1234")
    response = http.post(f"{API}/jobs", json={**JOB, "depends_on": [first.id]}, headers=OPERATOR)
    assert response.status_code == 201
    assert response.json()["depends_on"] == [first.id]
    assert response.json()["pending_dependencies"] == 1


def test_listing_jobs_filters_by_status(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    running = operator.submit_job("main", "abc1234", priority=1)
    waiting = operator.submit_job("main", "def5678")
    claimed(agent)
    everything = http.get(f"{API}/jobs", headers=OPERATOR).json()
    assert {job["id"] for job in everything} == {running.id, waiting.id}
    queued = http.get(f"{API}/jobs", params={"status": "queued"}, headers=OPERATOR).json()
    assert [job["id"] for job in queued] == [waiting.id]


def test_listing_queued_jobs_gives_the_claim_order(http: TestClient, operator: Client) -> None:
    low = operator.submit_job("main", "abc1234", priority=9)
    first_high = operator.submit_job("main", "abc1235", priority=1)
    second_high = operator.submit_job("main", "abc1236", priority=1)
    queued = http.get(f"{API}/jobs", params={"status": "queued"}, headers=OPERATOR).json()
    assert [job["id"] for job in queued] == [first_high.id, second_high.id, low.id]


def test_a_job_submitted_without_a_trigger_is_manual(http: TestClient, operator: Client) -> None:
    response = http.post(f"{API}/jobs", json=JOB, headers=OPERATOR)
    assert response.status_code == 201, response.text
    assert response.json()["trigger"] == "manual"
    assert operator.get_job(response.json()["id"]).trigger == "manual"


def test_a_job_submitted_with_a_trigger_stores_and_returns_it(
    http: TestClient, operator: Client
) -> None:
    response = http.post(f"{API}/jobs", json={**JOB, "trigger": "pull_request"}, headers=OPERATOR)
    assert response.status_code == 201, response.text
    assert response.json()["trigger"] == "pull_request"
    shown = http.get(f"{API}/jobs/{response.json()['id']}", headers=OPERATOR).json()
    assert shown["trigger"] == "pull_request"
    [listed] = http.get(f"{API}/jobs", headers=OPERATOR).json()
    assert listed["trigger"] == "pull_request"


def test_showing_a_job_returns_it(http: TestClient, operator: Client) -> None:
    job = operator.submit_job("feature/x", "ABCDEF1234")
    response = http.get(f"{API}/jobs/{job.id}", headers=OPERATOR)
    assert response.status_code == 200
    assert response.json()["branch"] == "feature/x"
    assert response.json()["commit"] == "abcdef1234"


def test_claiming_leases_the_highest_priority_job_with_a_fencing_token(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234", priority=7)
    urgent = operator.submit_job("main", "def5678", priority=1)
    response = http.post(
        f"{API}/jobs/claim", json={"server": "build1"}, headers=bearer(agent.token)
    )
    assert response.status_code == 200
    job = response.json()
    assert job["id"] == urgent.id
    assert job["status"] == "running"
    assert job["server"] == "build1"
    assert job["fencing_token"] >= 1
    assert job["lease_expires_at"] is not None


def test_claiming_skips_jobs_whose_labels_the_server_lacks(
    operator: Client, register_agent: RegisterAgent
) -> None:
    plain = register_agent("build1")
    maven = register_agent("build2", ["mvn"])
    job = operator.submit_job("main", "abc1234", labels=["mvn"])
    assert plain.client.claim_job("build1") is None
    assert claimed(maven).id == job.id


def test_a_job_pinned_to_a_server_is_claimed_by_that_server_alone(
    operator: Client, register_agent: RegisterAgent
) -> None:
    build1 = register_agent("build1")
    build2 = register_agent("build2")
    job = operator.submit_job("main", "abc1234", labels=["server=build2"])
    assert build1.client.claim_job("build1") is None
    assert claimed(build2).id == job.id


def test_claiming_with_nothing_eligible_returns_204_and_changes_nothing(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    before = store_state()
    response = http.post(
        f"{API}/jobs/claim", json={"server": "build1"}, headers=bearer(agent.token)
    )
    assert response.status_code == 204
    assert response.content == b""
    assert store_state() == before


def test_renewing_extends_the_lease(
    http: TestClient, operator: Client, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = claimed(agent)
    clock.advance(20)
    response = http.post(
        f"{API}/jobs/{job.id}/renew",
        json={"server": "build1", "fencing_token": job.fencing_token},
        headers=bearer(agent.token),
    )
    assert response.status_code == 200
    renewed = agent.client.get_job(job.id)
    assert job.lease_expires_at is not None
    assert renewed.lease_expires_at == job.lease_expires_at + timedelta(seconds=20)


def test_an_agent_completes_its_job_with_its_fencing_token(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = claimed(agent)
    response = http.post(
        f"{API}/jobs/{job.id}/complete",
        json={
            "status": "succeeded",
            "exit_code": 0,
            "duration": 12.5,
            "server": "build1",
            "fencing_token": job.fencing_token,
        },
        headers=bearer(agent.token),
    )
    assert response.status_code == 200
    done = response.json()
    assert (done["status"], done["exit_code"], done["duration"]) == ("succeeded", 0, 12.5)
    assert done["finished_at"] is not None


def test_an_operator_completes_a_running_job_without_its_token(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = claimed(agent)
    response = http.post(
        f"{API}/jobs/{job.id}/complete",
        json={"status": "failed", "exit_code": 2},
        headers=OPERATOR,
    )
    assert response.status_code == 200
    assert response.json()["status"] == "failed"


def test_cancelling_a_job_blocks_its_dependents(http: TestClient, operator: Client) -> None:
    first = operator.submit_job("main", "abc1234")
    second = operator.submit_job("main", "def5678", depends_on=[first.id])
    response = http.post(
        f"{API}/jobs/{first.id}/cancel", json={"reason": "obsolete"}, headers=OPERATOR
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    dependent = operator.get_job(second.id)
    assert dependent.status == "blocked"
    assert dependent.blocked_reason is not None
    assert str(first.id) in dependent.blocked_reason


def test_retrying_a_failed_job_queues_a_new_attempt(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = claimed(agent)
    operator.complete_job(job.id, status="failed", exit_code=1)
    response = http.post(f"{API}/jobs/{job.id}/retry", headers=OPERATOR)
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert response.json()["attempt"] == 2


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "mentions"),
    [
        pytest.param({"priority": 0}, 422, "priority", id="priority-0"),
        pytest.param({"priority": 11}, 422, "priority", id="priority-11"),
        pytest.param({"priority": "5"}, 422, "priority", id="priority-string"),
        pytest.param({"priority": True}, 422, "priority", id="priority-true"),
        pytest.param({"branch": "a..b"}, 422, "branch", id="branch-dot-dot"),
        pytest.param({"commit": "xyz"}, 422, "commit", id="commit-not-hex"),
        pytest.param({"commit": "abc12"}, 422, "commit", id="commit-too-short"),
        pytest.param({"commit": "abc1234\n"}, 422, "commit", id="commit-trailing-newline"),
        pytest.param({"depends_on": [999]}, 404, "999", id="unknown-dependency"),
        pytest.param({"labels": ["bad label"]}, 422, "label", id="label-with-space"),
        pytest.param({"labels": ["x\n"]}, 422, "label", id="label-trailing-newline"),
        pytest.param({"nonsense": 1}, 422, "nonsense", id="unknown-field"),
        pytest.param({"trigger": "Push"}, 422, "invalid trigger", id="trigger-upper-case"),
        pytest.param({"trigger": "pull request"}, 422, "invalid trigger", id="trigger-space"),
        pytest.param({"trigger": ""}, 422, "invalid trigger", id="trigger-empty"),
        pytest.param({"trigger": "x" * 33}, 422, "invalid trigger", id="trigger-too-long"),
        pytest.param({"trigger": 1}, 422, "trigger", id="trigger-number"),
    ],
)
def test_submitting_bad_input_is_refused_and_changes_nothing(
    http: TestClient,
    operator: Client,
    store_state: StoreState,
    change: dict[str, Any],
    status: int,
    mentions: str,
) -> None:
    operator.submit_job("main", "abc1234")
    before = store_state()
    response = http.post(f"{API}/jobs", json={**JOB, **change}, headers=OPERATOR)
    assert mentions in error_of(response, status)
    assert store_state() == before


def test_submitting_without_a_commit_for_a_branch_not_set_up_gets_404(
    http: TestClient, store_state: StoreState
) -> None:
    before = store_state()
    response = http.post(f"{API}/jobs", json={"branch": "main"}, headers=OPERATOR)
    assert "not set up" in error_of(response, 404)
    assert store_state() == before


def test_submitting_malformed_json_gets_422(http: TestClient, store_state: StoreState) -> None:
    before = store_state()
    response = http.post(
        f"{API}/jobs",
        content=b'{"branch": "main", ',
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    error_of(response, 422)
    assert store_state() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/jobs/999", None, id="show"),
        pytest.param("POST", "/jobs/999/cancel", {}, id="cancel"),
        pytest.param("POST", "/jobs/999/complete", {"status": "succeeded"}, id="complete"),
        pytest.param(
            "POST", "/jobs/999/renew", {"server": "build1", "fencing_token": 1}, id="renew"
        ),
    ],
)
def test_an_unknown_job_id_gets_404_and_changes_nothing(
    http: TestClient,
    operator: Client,
    store_state: StoreState,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    operator.register_server("build1")
    operator.submit_job("main", "abc1234")
    before = store_state()
    response = http.request(method, f"{API}{path}", json=body, headers=OPERATOR)
    assert "999" in error_of(response, 404)
    assert store_state() == before


def test_a_job_id_that_is_not_a_number_gets_422(http: TestClient) -> None:
    error_of(http.get(f"{API}/jobs/abc", headers=OPERATOR), 422)


def test_listing_jobs_of_an_unknown_status_gets_422(http: TestClient) -> None:
    response = http.get(f"{API}/jobs", params={"status": "sleeping"}, headers=OPERATOR)
    assert "sleeping" in error_of(response, 422)


def test_claiming_for_an_unknown_server_gets_404(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    operator.submit_job("main", "abc1234")
    before = store_state()
    response = http.post(f"{API}/jobs/claim", json={"server": "ghost"}, headers=OPERATOR)
    assert "ghost" in error_of(response, 404)
    assert store_state() == before


def test_completing_with_a_stale_fencing_token_gets_409_and_changes_nothing(
    http: TestClient,
    operator: Client,
    register_agent: RegisterAgent,
    clock: FakeClock,
    store_state: StoreState,
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    old = claimed(agent)
    clock.advance(31)  # the lease (30 s) runs out; maintenance requeues the job
    operator.maintenance_step()
    new = claimed(agent)
    assert new.id == old.id
    assert new.fencing_token > old.fencing_token
    before = store_state()
    response = http.post(
        f"{API}/jobs/{old.id}/complete",
        json={"status": "succeeded", "server": "build1", "fencing_token": old.fencing_token},
        headers=bearer(agent.token),
    )
    assert "stale fencing token" in error_of(response, 409)
    assert store_state() == before


def test_renewing_with_a_stale_fencing_token_gets_409_and_changes_nothing(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = claimed(agent)
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/renew",
        json={"server": "build1", "fencing_token": job.fencing_token - 1},
        headers=bearer(agent.token),
    )
    assert "stale fencing token" in error_of(response, 409)
    assert store_state() == before


def test_completing_for_the_wrong_server_gets_409_and_changes_nothing(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    register_agent("build2")
    operator.submit_job("main", "abc1234")
    job = claimed(agent)
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/complete",
        json={"status": "succeeded", "server": "build2"},
        headers=OPERATOR,
    )
    assert "leased to build1" in error_of(response, 409)
    assert store_state() == before


def test_completing_a_queued_job_gets_409_and_changes_nothing(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    job = operator.submit_job("main", "abc1234")
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/complete", json={"status": "succeeded"}, headers=OPERATOR
    )
    assert "not running" in error_of(response, 409)
    assert store_state() == before


def test_completing_with_an_unknown_status_gets_422(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = claimed(agent)
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/complete", json={"status": "cancelled"}, headers=OPERATOR
    )
    error_of(response, 422)
    assert store_state() == before


def test_completing_with_a_negative_duration_gets_422(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = claimed(agent)
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/complete",
        json={"status": "succeeded", "duration": -1},
        headers=OPERATOR,
    )
    assert "duration" in error_of(response, 422)
    assert store_state() == before


def test_cancelling_a_finished_job_gets_409_and_changes_nothing(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    job = operator.submit_job("main", "abc1234")
    operator.cancel_job(job.id)
    before = store_state()
    error_of(http.post(f"{API}/jobs/{job.id}/cancel", json={}, headers=OPERATOR), 409)
    assert store_state() == before


def test_retrying_a_queued_job_gets_409_and_changes_nothing(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    job = operator.submit_job("main", "abc1234")
    before = store_state()
    error_of(http.post(f"{API}/jobs/{job.id}/retry", headers=OPERATOR), 409)
    assert store_state() == before
