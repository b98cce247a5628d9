"""Claim and complete over HTTP: bodies serialised once, cached authentication, a lost database."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter
from starlette.testclient import TestClient

import buildcoord.store.engine as engine_module
from buildcoord.client import Client
from buildcoord.models import Assignment
from buildcoord.store import Store
from buildcoord.store.engine import read_transaction
from inprocess import ADMIN_TOKEN, API, RegisterAgent, bearer, error_of

OPERATOR = bearer(ADMIN_TOKEN)
JOB = {"branch": "main", "commit": "abc1234"}


def _as_fastapi_renders(model: type[Assignment], body: bytes) -> bytes:
    """The bytes FastAPI's own response_model serialisation gives for the same value."""
    reference = FastAPI()
    value = TypeAdapter(model).validate_json(body)

    @reference.get("/value", response_model=model)
    def show() -> Assignment:
        return value

    with TestClient(reference) as client:
        return client.get("/value").content


def test_claim_and_complete_answer_with_the_bytes_the_job_is_shown_with(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    job = operator.submit_job("main", "abc1234")
    headers = bearer(agent.token)

    claimed = http.post(f"{API}/jobs/claim", json={"server": "build1"}, headers=headers)
    shown = http.get(f"{API}/jobs/{job.id}", headers=OPERATOR)
    assert claimed.status_code == 200
    assert claimed.headers["content-type"] == "application/json"
    assert claimed.content == shown.content

    token = claimed.json()["fencing_token"]
    completed = http.post(
        f"{API}/jobs/{job.id}/complete",
        json={"status": "succeeded", "exit_code": 0, "server": "build1", "fencing_token": token},
        headers=headers,
    )
    shown = http.get(f"{API}/jobs/{job.id}", headers=OPERATOR)
    assert completed.status_code == 200
    assert completed.headers["content-type"] == "application/json"
    assert completed.content == shown.content
    assert completed.json()["status"] == "succeeded"

    nothing = http.post(f"{API}/jobs/claim", json={"server": "build1"}, headers=headers)
    assert nothing.status_code == 204
    assert nothing.content == b""


def test_an_agent_claim_answers_with_the_assignment_as_fastapi_renders_it(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    operator.add_branch("main", repo="/srv/repo", command="make test", timeout_seconds=60.0)
    job = operator.submit_job("main", "abc1234")

    response = http.post(f"{API}/agents/build1/claim", headers=bearer(agent.token))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == _as_fastapi_renders(Assignment, response.content)
    body = response.json()
    assert body["job"] == http.get(f"{API}/jobs/{job.id}", headers=OPERATOR).json()
    assert body["command"] == "make test"
    assert http.post(f"{API}/agents/build1/claim", headers=bearer(agent.token)).status_code == 204


def test_a_removed_servers_agent_token_gets_401_even_right_after_it_was_used(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    headers = bearer(agent.token)
    claim = http.post(f"{API}/jobs/claim", json={"server": "build1"}, headers=headers)
    assert claim.status_code == 204  # authenticated (and cached), nothing queued

    operator.remove_server("build1")

    error_of(http.get(f"{API}/jobs", headers=headers), 401)
    error_of(http.post(f"{API}/jobs/claim", json={"server": "build1"}, headers=headers), 401)


def test_a_claim_on_a_lost_database_connection_gets_503_and_the_next_one_works(
    http: TestClient,
    store: Store,
    operator: Client,
    register_agent: RegisterAgent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no connection to lose")
    import psycopg

    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    headers = bearer(agent.token)
    assert http.get(f"{API}/jobs", headers=headers).status_code == 200  # token cached
    with read_transaction(store.engine) as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    assert store.engine.pool.checkedin() == 1
    # The server ends the connection, and the checkout cannot tell (a silent network cut).
    monkeypatch.setattr(engine_module, "_readable", lambda fd: False)
    url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.02)

    lost = http.post(f"{API}/jobs/claim", json={"server": "build1"}, headers=headers)
    assert error_of(lost, 503).startswith("database unavailable: ")

    claimed = http.post(f"{API}/jobs/claim", json={"server": "build1"}, headers=headers)
    assert claimed.status_code == 200
    assert claimed.json()["status"] == "running"
