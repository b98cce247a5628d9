"""Bearer tokens over HTTP: who may call what, and how tokens are kept."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.store import Store
from buildcoord.store.engine import read_transaction
from buildcoord.store.schema import tokens
from inprocess import ADMIN_TOKEN, API, RegisterAgent, bearer, error_of
from store_rows import StoreState

JOB = {"branch": "main", "commit": "abc1234"}


def test_health_needs_no_token(http: TestClient, store: Store) -> None:
    response = http.get(f"{API}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == store.engine.dialect.name


def test_openapi_lists_the_api_paths_under_api_v1(http: TestClient) -> None:
    paths = set(http.get("/openapi.json").json()["paths"])
    assert {
        f"{API}/jobs",
        f"{API}/jobs/claim",
        f"{API}/jobs/{{job_id}}/complete",
        f"{API}/servers",
        f"{API}/servers/{{name}}/heartbeat",
        f"{API}/locks/acquire",
        f"{API}/messages",
        f"{API}/tokens",
        f"{API}/health",
        f"{API}/maintenance/step",
    } <= paths
    assert all(path.startswith(f"{API}/") for path in paths)


def test_a_request_without_a_token_gets_401_with_www_authenticate(http: TestClient) -> None:
    response = http.get(f"{API}/jobs")
    error_of(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_request_with_another_auth_scheme_gets_401(http: TestClient) -> None:
    response = http.get(f"{API}/jobs", headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
    error_of(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_invalid_token_gets_401(http: TestClient) -> None:
    response = http.get(f"{API}/jobs", headers=bearer("bc_not-a-real-token"))
    assert "invalid" in error_of(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_invalid_token_cannot_write(http: TestClient, store_state: StoreState) -> None:
    before = store_state()
    response = http.post(f"{API}/jobs", json=JOB, headers=bearer("bc_not-a-real-token"))
    error_of(response, 401)
    assert store_state() == before


def test_a_revoked_token_gets_401(http: TestClient, operator: Client) -> None:
    issued = operator.create_token("ci")
    assert http.get(f"{API}/jobs", headers=bearer(issued.secret)).status_code == 200
    operator.revoke_token(issued.token.id)
    error_of(http.get(f"{API}/jobs", headers=bearer(issued.secret)), 401)


def test_a_removed_servers_agent_token_gets_401(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    operator.remove_server("build1")
    error_of(http.get(f"{API}/jobs", headers=bearer(agent.token)), 401)


def test_an_agent_cannot_heartbeat_as_another_server(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    build1 = register_agent("build1")
    register_agent("build2")
    before = store_state()
    response = http.post(
        f"{API}/servers/build2/heartbeat",
        json={"metrics": {"cpu_percent": 5}},
        headers=bearer(build1.token),
    )
    assert "build1" in error_of(response, 403)
    assert store_state() == before


def test_an_agent_cannot_claim_as_another_server(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    build1 = register_agent("build1")
    register_agent("build2")
    operator.submit_job("main", "abc1234")
    before = store_state()
    response = http.post(
        f"{API}/jobs/claim", json={"server": "build2"}, headers=bearer(build1.token)
    )
    error_of(response, 403)
    assert store_state() == before


def test_an_agent_cannot_complete_a_job_leased_to_another_server_in_its_name(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    build1 = register_agent("build1")
    build2 = register_agent("build2")
    operator.submit_job("main", "abc1234")
    job = build2.client.claim_job("build2")
    assert job is not None
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/complete",
        json={"status": "succeeded", "server": "build2", "fencing_token": job.fencing_token},
        headers=bearer(build1.token),
    )
    error_of(response, 403)
    assert store_state() == before


def test_an_agent_cannot_complete_a_job_leased_to_another_server_as_itself(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    build1 = register_agent("build1")
    build2 = register_agent("build2")
    operator.submit_job("main", "abc1234")
    job = build2.client.claim_job("build2")
    assert job is not None
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/complete",
        json={"status": "succeeded", "server": "build1", "fencing_token": job.fencing_token},
        headers=bearer(build1.token),
    )
    assert "leased to build2" in error_of(response, 409)
    assert store_state() == before


def test_an_agent_cannot_complete_a_job_without_naming_its_lease(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    build1 = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = build1.client.claim_job("build1")
    assert job is not None
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/complete",
        json={"status": "succeeded"},
        headers=bearer(build1.token),
    )
    error_of(response, 403)
    assert store_state() == before


def test_an_agent_cannot_renew_another_servers_lease(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    build1 = register_agent("build1")
    build2 = register_agent("build2")
    operator.submit_job("main", "abc1234")
    job = build2.client.claim_job("build2")
    assert job is not None
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/renew",
        json={"server": "build2", "fencing_token": job.fencing_token},
        headers=bearer(build1.token),
    )
    error_of(response, 403)
    assert store_state() == before


def test_an_agent_cannot_queue_jobs(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    before = store_state()
    error_of(http.post(f"{API}/jobs", json=JOB, headers=bearer(agent.token)), 403)
    assert store_state() == before


def test_an_agent_cannot_create_tokens(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    before = store_state()
    response = http.post(f"{API}/tokens", json={"name": "mine"}, headers=bearer(agent.token))
    error_of(response, 403)
    assert store_state() == before


def test_a_read_token_can_read_everything(http: TestClient, operator: Client) -> None:
    secret = operator.create_token("dashboard", kind="read").secret
    for path in ("jobs", "servers", "locks", "messages", "messages/stats", "events"):
        response = http.get(f"{API}/{path}", headers=bearer(secret))
        assert response.status_code == 200, (path, response.text)


def test_a_read_token_cannot_queue_a_job(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    secret = operator.create_token("dashboard", kind="read").secret
    before = store_state()
    error_of(http.post(f"{API}/jobs", json=JOB, headers=bearer(secret)), 403)
    assert store_state() == before


def test_a_read_token_cannot_list_tokens(http: TestClient, operator: Client) -> None:
    secret = operator.create_token("dashboard", kind="read").secret
    error_of(http.get(f"{API}/tokens", headers=bearer(secret)), 403)


def test_an_operator_creates_a_token_that_works_at_once(http: TestClient) -> None:
    response = http.post(
        f"{API}/tokens", json={"name": "ci", "kind": "operator"}, headers=bearer(ADMIN_TOKEN)
    )
    assert response.status_code == 201
    issued = response.json()
    assert issued["token"]["name"] == "ci"
    assert issued["token"]["kind"] == "operator"
    assert issued["token"]["revoked_at"] is None
    created = http.post(f"{API}/jobs", json=JOB, headers=bearer(issued["secret"]))
    assert created.status_code == 201


def test_an_operator_lists_tokens_without_their_secrets(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    issued = operator.create_token("dashboard", kind="read")
    agent = register_agent("build1")
    response = http.get(f"{API}/tokens", headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 200
    listed = {(token["name"], token["kind"], token["server"]) for token in response.json()}
    assert ("dashboard", "read", None) in listed
    assert ("agent build1", "agent", "build1") in listed
    assert any(kind == "operator" for _name, kind, _server in listed)
    for secret in (issued.secret, agent.token, ADMIN_TOKEN):
        assert secret not in response.text
    assert "hash" not in response.text


def test_an_operator_revokes_a_token(http: TestClient, operator: Client) -> None:
    issued = operator.create_token("ci")
    response = http.delete(f"{API}/tokens/{issued.token.id}", headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    listed = {token.id: token for token in operator.list_tokens()}
    assert listed[issued.token.id].revoked_at is not None


def test_revoking_a_token_twice_gets_409(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    issued = operator.create_token("ci")
    operator.revoke_token(issued.token.id)
    before = store_state()
    response = http.delete(f"{API}/tokens/{issued.token.id}", headers=bearer(ADMIN_TOKEN))
    error_of(response, 409)
    assert store_state() == before


def test_revoking_an_unknown_token_gets_404(http: TestClient, store_state: StoreState) -> None:
    before = store_state()
    error_of(http.delete(f"{API}/tokens/999", headers=bearer(ADMIN_TOKEN)), 404)
    assert store_state() == before


def test_creating_an_agent_token_directly_gets_422(
    http: TestClient, store_state: StoreState
) -> None:
    before = store_state()
    response = http.post(
        f"{API}/tokens", json={"name": "sneaky", "kind": "agent"}, headers=bearer(ADMIN_TOKEN)
    )
    error_of(response, 422)
    assert store_state() == before


def test_tokens_are_stored_only_as_hashes(
    store: Store, operator: Client, register_agent: RegisterAgent
) -> None:
    secrets = [
        ADMIN_TOKEN,
        operator.create_token("ci").secret,
        operator.create_token("dashboard", kind="read").secret,
        register_agent("build1").token,
    ]
    with read_transaction(store.engine) as conn:
        rows = [tuple(row) for row in conn.execute(select(tokens))]
        hashes = set(conn.execute(select(tokens.c.token_hash)).scalars())
    stored = repr(rows)
    for secret in secrets:
        assert secret not in stored
        assert hashlib.sha256(secret.encode()).hexdigest() in hashes
