"""/api/v1/servers: registration, heartbeats, live status, removal, and refused requests."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from inprocess import ADMIN_TOKEN, API, RegisterAgent, bearer, error_of
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)
METRICS: dict[str, Any] = {
    "cpu_percent": 12.5,
    "load_1m": 0.5,
    "memory_used_bytes": 2 * 2**30,
    "memory_total_bytes": 8 * 2**30,
    "disk_free_bytes": 100 * 2**30,
    "disk_total_bytes": 500 * 2**30,
    "uptime_seconds": 3600,
}


def heartbeat(http: TestClient, name: str, token: str, **body: Any) -> Any:
    """Send a heartbeat over raw HTTP, insisting it succeeds; return the server."""
    response = http.post(f"{API}/servers/{name}/heartbeat", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


# --- the main paths ---------------------------------------------------------------------------


def test_registering_a_server_returns_its_agent_token_once(
    http: TestClient, operator: Client
) -> None:
    response = http.post(
        f"{API}/servers", json={"name": "build1", "labels": ["mvn", "os=debian"]}, headers=OPERATOR
    )
    assert response.status_code == 201
    registered = response.json()
    assert registered["server"]["name"] == "build1"
    assert registered["server"]["labels"] == ["mvn", "os=debian"]
    assert registered["server"]["status"] == "offline"
    assert registered["token"].startswith("bc_")
    assert registered["token"] not in http.get(f"{API}/servers", headers=OPERATOR).text


def test_the_agent_token_acts_as_its_server(http: TestClient, operator: Client) -> None:
    _server, token = operator.register_server("build1")
    server = heartbeat(http, "build1", token, metrics=METRICS, agent_version="0.1.0")
    assert server["status"] == "online"
    assert server["agent_version"] == "0.1.0"


def test_a_heartbeat_records_metrics(http: TestClient, register_agent: RegisterAgent) -> None:
    agent = register_agent("build1")
    heartbeat(http, "build1", agent.token, metrics=METRICS)
    shown = http.get(f"{API}/servers/build1", headers=OPERATOR).json()
    assert {key: shown["metrics"][key] for key in METRICS} == METRICS
    assert shown["heartbeat_age_seconds"] == 0


def test_a_heartbeat_reports_labels_and_keeps_the_operators(
    http: TestClient, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1", ["os=debian"])
    server = heartbeat(http, "build1", agent.token, labels=["arch=amd64", "mvn"])
    assert (server["labels"], server["reported_labels"]) == (["os=debian"], ["arch=amd64", "mvn"])


def test_listing_servers_shows_status_by_heartbeat_age(
    http: TestClient, register_agent: RegisterAgent, clock: FakeClock
) -> None:
    for name in ("build1", "build2", "build3"):
        register_agent(name)
    heartbeat(http, "build1", ADMIN_TOKEN)
    clock.advance(290)
    heartbeat(http, "build2", ADMIN_TOKEN)
    clock.advance(15)  # build2 missed three 5 s heartbeats; build1 is 305 s old
    heartbeat(http, "build3", ADMIN_TOKEN)
    listed = http.get(f"{API}/servers", headers=OPERATOR).json()
    assert [(server["name"], server["status"]) for server in listed] == [
        ("build1", "offline"),
        ("build2", "stale"),
        ("build3", "online"),
    ]


def test_a_server_running_a_job_is_busy(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    heartbeat(http, "build1", agent.token)
    job = operator.submit_job("main", "abc1234")
    agent.client.claim_job("build1")
    shown = http.get(f"{API}/servers/build1", headers=OPERATOR).json()
    assert shown["status"] == "busy"
    assert shown["running_jobs"] == [job.id]


def test_removing_a_server_forgets_it_and_revokes_its_token(
    http: TestClient, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    response = http.delete(f"{API}/servers/build1", headers=OPERATOR)
    assert response.status_code == 204
    error_of(http.get(f"{API}/servers/build1", headers=OPERATOR), 404)
    error_of(http.get(f"{API}/jobs", headers=bearer(agent.token)), 401)


# --- refused requests -------------------------------------------------------------------------


def test_registering_a_duplicate_server_gets_409_and_changes_nothing(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    register_agent("build1")
    before = store_state()
    response = http.post(f"{API}/servers", json={"name": "build1"}, headers=OPERATOR)
    assert "build1" in error_of(response, 409)
    assert store_state() == before


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        pytest.param({"name": "bad name"}, "server name", id="name-with-space"),
        pytest.param({"name": "build1\n"}, "server name", id="name-with-trailing-newline"),
        pytest.param({"name": "all"}, "reserved", id="name-reserved"),
        pytest.param({"name": "build1", "labels": ["a,b"]}, "label", id="label-with-comma"),
        pytest.param({"name": "build1", "token": "mine"}, "token", id="unknown-field"),
    ],
)
def test_registering_with_bad_input_gets_422_and_changes_nothing(
    http: TestClient, store_state: StoreState, body: dict[str, Any], mentions: str
) -> None:
    before = store_state()
    response = http.post(f"{API}/servers", json=body, headers=OPERATOR)
    assert mentions in error_of(response, 422)
    assert store_state() == before


def test_registering_a_server_with_a_server_label_gets_422_and_changes_nothing(
    http: TestClient, store_state: StoreState
) -> None:
    before = store_state()
    body = {"name": "build1", "labels": ["server=build2"]}
    response = http.post(f"{API}/servers", json=body, headers=OPERATOR)
    assert "server=" in error_of(response, 422)
    assert store_state() == before


def test_a_heartbeat_reporting_a_server_label_gets_422_and_changes_nothing(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    before = store_state()
    response = http.post(
        f"{API}/servers/build1/heartbeat",
        json={"labels": ["server=build2"]},
        headers=bearer(agent.token),
    )
    assert "server=" in error_of(response, 422)
    assert store_state() == before


def test_an_agent_cannot_register_servers(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    before = store_state()
    response = http.post(f"{API}/servers", json={"name": "build9"}, headers=bearer(agent.token))
    error_of(response, 403)
    assert store_state() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/servers/ghost", None, id="show"),
        pytest.param("DELETE", "/servers/ghost", None, id="remove"),
        pytest.param("POST", "/servers/ghost/heartbeat", {}, id="heartbeat"),
    ],
)
def test_an_unknown_server_gets_404_and_changes_nothing(
    http: TestClient,
    register_agent: RegisterAgent,
    store_state: StoreState,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    register_agent("build1")
    before = store_state()
    response = http.request(method, f"{API}{path}", json=body, headers=OPERATOR)
    assert "ghost" in error_of(response, 404)
    assert store_state() == before


@pytest.mark.parametrize(
    "metrics",
    [
        pytest.param({"cpu_percent": -1}, id="negative-cpu"),
        pytest.param({"memory_used_bytes": 1.5}, id="fractional-bytes"),
        pytest.param({"cpu_percent": "12"}, id="string-cpu"),
        pytest.param({"temperature": 40}, id="unknown-metric"),
        pytest.param({"memory_used_bytes": 2**63}, id="bytes-beyond-64-bits"),
        pytest.param({"disk_free_bytes": -1}, id="negative-bytes"),
        pytest.param({"cpu_percent": 10**400}, id="cpu-beyond-a-float"),
        pytest.param({"load_1m": -0.5}, id="negative-load"),
    ],
)
def test_a_heartbeat_with_a_bad_metric_gets_422_and_changes_nothing(
    http: TestClient,
    register_agent: RegisterAgent,
    store_state: StoreState,
    metrics: dict[str, Any],
) -> None:
    agent = register_agent("build1")
    before = store_state()
    response = http.post(
        f"{API}/servers/build1/heartbeat", json={"metrics": metrics}, headers=bearer(agent.token)
    )
    error_of(response, 422)
    assert store_state() == before


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_a_heartbeat_with_a_non_finite_metric_gets_422_and_changes_nothing(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState, value: str
) -> None:
    agent = register_agent("build1")
    before = store_state()
    response = http.post(
        f"{API}/servers/build1/heartbeat",
        content=f'{{"metrics": {{"cpu_percent": {value}}}}}'.encode(),
        headers={**bearer(agent.token), "Content-Type": "application/json"},
    )
    error_of(response, 422)
    assert store_state() == before


def test_removing_a_server_that_runs_a_job_gets_409_and_changes_nothing(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    agent.client.claim_job("build1")
    before = store_state()
    response = http.delete(f"{API}/servers/build1", headers=OPERATOR)
    assert "running job" in error_of(response, 409)
    assert store_state() == before
