"""Build tokens over HTTP: a build appends to its own job's log while its lease lives, no more."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.models import Job
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.web.app import create_app
from inprocess import API, BASE_URL, Agent, RegisterAgent, bearer, error_of
from store_rows import StoreState

LINE = {"entries": [{"kind": "output", "message": "compiling"}]}


def claimed(agent: Agent) -> Job:
    """Claim the next job as the agent's server, insisting there is one."""
    job = agent.client.claim_job(agent.name)
    assert job is not None
    return job


def mint(http: TestClient, agent: Agent, job: Job) -> str:
    """The build token the lease holder gets for its job."""
    response = http.post(
        f"{API}/jobs/{job.id}/build-token",
        json={"server": agent.name, "fencing_token": job.fencing_token},
        headers=bearer(agent.token),
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert isinstance(token, str)
    return token


def append(http: TestClient, job_id: int, token: str, **lease: Any) -> Any:
    """POST one output line to a job's log with token."""
    return http.post(f"{API}/jobs/{job_id}/log", json={**LINE, **lease}, headers=bearer(token))


@pytest.fixture
def build1(register_agent: RegisterAgent) -> Agent:
    """The agent of server build1."""
    return register_agent("build1")


@pytest.fixture
def running(operator: Client, build1: Agent) -> Job:
    """A job running on build1."""
    operator.submit_job("main", "abc1234")
    return claimed(build1)


def test_the_lease_holder_gets_a_build_token_that_is_not_its_own(
    http: TestClient, build1: Agent, running: Job
) -> None:
    token = mint(http, build1, running)
    assert token.startswith(f"bcb_{running.id}_{running.fencing_token}_")
    assert build1.token not in token


def test_a_build_token_appends_to_its_own_jobs_log_while_the_job_runs(
    http: TestClient, operator: Client, build1: Agent, running: Job
) -> None:
    token = mint(http, build1, running)
    assert append(http, running.id, token).json() == {"count": 1}
    assert [entry.message for entry in operator.log_entries(running.id)] == ["compiling"]


def test_a_build_token_appends_with_the_lease_the_build_was_told(
    http: TestClient, operator: Client, build1: Agent, running: Job
) -> None:
    # What `buildcoord log event` sends from inside a build: BUILDCOORD_SERVER and
    # BUILDCOORD_FENCING_TOKEN along with the entries.
    token = mint(http, build1, running)
    response = append(http, running.id, token, server="build1", fencing_token=running.fencing_token)
    assert response.json() == {"count": 1}


def test_a_build_token_cannot_append_to_another_jobs_log(
    http: TestClient,
    operator: Client,
    build1: Agent,
    running: Job,
    register_agent: RegisterAgent,
    store_state: StoreState,
) -> None:
    operator.submit_job("main", "def5678")
    other = claimed(register_agent("build2"))
    token = mint(http, build1, running)
    before = store_state()
    assert f"job {running.id}" in error_of(append(http, other.id, token), 403)
    assert store_state() == before


def test_a_build_token_cannot_append_under_another_fencing_token(
    http: TestClient, build1: Agent, running: Job, store_state: StoreState
) -> None:
    token = mint(http, build1, running)
    before = store_state()
    response = append(http, running.id, token, fencing_token=running.fencing_token + 1)
    error_of(response, 403)
    assert store_state() == before


def test_a_build_token_stops_working_when_its_job_completes(
    http: TestClient, build1: Agent, running: Job, store_state: StoreState
) -> None:
    token = mint(http, build1, running)
    build1.client.complete_job(
        running.id, status="succeeded", server="build1", fencing_token=running.fencing_token
    )
    before = store_state()
    assert "not running" in error_of(append(http, running.id, token), 409)
    assert store_state() == before


def test_a_build_token_stops_working_when_its_lease_is_issued_again(
    http: TestClient,
    operator: Client,
    build1: Agent,
    running: Job,
    clock: FakeClock,
    store_state: StoreState,
) -> None:
    token = mint(http, build1, running)
    clock.advance(31)  # the lease (30 s) runs out; maintenance requeues the job
    operator.maintenance_step()
    again = claimed(build1)
    assert again.id == running.id
    assert again.fencing_token > running.fencing_token
    before = store_state()
    assert "stale fencing token" in error_of(append(http, running.id, token), 409)
    assert store_state() == before


def test_a_build_token_with_an_altered_mac_gets_401(
    http: TestClient, build1: Agent, running: Job, store_state: StoreState
) -> None:
    token = mint(http, build1, running)
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    before = store_state()
    error_of(append(http, running.id, forged), 401)
    assert store_state() == before


def test_a_build_token_moved_to_another_lease_gets_401(
    http: TestClient, build1: Agent, running: Job, store_state: StoreState
) -> None:
    token = mint(http, build1, running)
    _, job_id, fencing_token, mac = token.split("_")
    moved = f"bcb_{job_id}_{int(fencing_token) + 1}_{mac}"
    before = store_state()
    error_of(append(http, running.id, moved), 401)
    assert store_state() == before


def test_a_build_token_before_any_was_issued_gets_401_and_writes_nothing(
    http: TestClient, running: Job, store_state: StoreState
) -> None:
    made_up = f"bcb_{running.id}_{running.fencing_token}_{'0' * 64}"
    before = store_state()
    error_of(append(http, running.id, made_up), 401)
    assert store_state() == before


def test_another_agent_cannot_get_a_build_token_for_a_job_it_does_not_hold(
    http: TestClient, running: Job, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    build2 = register_agent("build2")
    before = store_state()
    for server in ("build1", "build2"):
        response = http.post(
            f"{API}/jobs/{running.id}/build-token",
            json={"server": server, "fencing_token": running.fencing_token},
            headers=bearer(build2.token),
        )
        error_of(response, 403 if server == "build1" else 409)
    assert store_state() == before


def test_a_read_token_cannot_get_a_build_token(
    http: TestClient, operator: Client, running: Job, store_state: StoreState
) -> None:
    reader = operator.create_token("dashboard", kind="read").secret
    before = store_state()
    response = http.post(
        f"{API}/jobs/{running.id}/build-token",
        json={"server": "build1", "fencing_token": running.fencing_token},
        headers=bearer(reader),
    )
    error_of(response, 403)
    assert store_state() == before


def test_a_stale_lease_cannot_get_a_build_token(
    http: TestClient, build1: Agent, running: Job, store_state: StoreState
) -> None:
    before = store_state()
    response = http.post(
        f"{API}/jobs/{running.id}/build-token",
        json={"server": "build1", "fencing_token": running.fencing_token - 1},
        headers=bearer(build1.token),
    )
    assert "stale fencing token" in error_of(response, 409)
    assert store_state() == before


# Everything but its own job's log answers 403 to a build token, reads included.
REFUSED = [
    ("GET", "/jobs", None),
    ("GET", "/jobs/{job}", None),
    ("GET", "/jobs/{job}/log", None),
    ("GET", "/jobs/{job}/manifest", None),
    ("POST", "/jobs", {"branch": "main", "commit": "abc1234"}),
    ("POST", "/jobs/claim", {"server": "build1"}),
    ("POST", "/agents/build1/claim", None),
    ("POST", "/jobs/{job}/renew", {"server": "build1", "fencing_token": "{fencing}"}),
    (
        "POST",
        "/jobs/{job}/complete",
        {"status": "succeeded", "server": "build1", "fencing_token": "{fencing}"},
    ),
    ("POST", "/jobs/{job}/build-token", {"server": "build1", "fencing_token": "{fencing}"}),
    ("POST", "/servers/build1/heartbeat", {"labels": ["gpu"]}),
    ("GET", "/servers", None),
    ("POST", "/locks/acquire", {"name": "deploy", "holder": "build1"}),
    ("POST", "/messages", {"sender": "build1", "recipient": "all", "subject": "hi"}),
    ("GET", "/messages", None),
    ("GET", "/events", None),
    ("GET", "/branches", None),
    ("POST", "/tokens", {"name": "mine"}),
]


@pytest.mark.parametrize(("method", "path", "body"), REFUSED)
def test_a_build_token_is_refused_everything_but_its_jobs_log(
    http: TestClient,
    build1: Agent,
    running: Job,
    store_state: StoreState,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    token = mint(http, build1, running)
    if body is not None:
        body = {
            key: running.fencing_token if value == "{fencing}" else value
            for key, value in body.items()
        }
    before = store_state()
    response = http.request(
        method, API + path.format(job=running.id), json=body, headers=bearer(token)
    )
    error_of(response, 403)
    assert store_state() == before


def test_another_coordinator_on_the_same_database_accepts_the_build_token(
    http: TestClient,
    operator: Client,
    build1: Agent,
    running: Job,
    store: Store,
    settings: Settings,
    clock: FakeClock,
) -> None:
    token = mint(http, build1, running)
    other = Coordinator(store, settings, clock)
    with TestClient(create_app(other), base_url=BASE_URL) as second:
        assert append(second, running.id, token).json() == {"count": 1}
