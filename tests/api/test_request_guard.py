"""The request guard: the token before the body, bounded bodies, no NUL byte, bounded numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.web.app import create_app
from inprocess import ADMIN_TOKEN, API, BASE_URL, RegisterAgent, bearer, error_of
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)
JOB = {"branch": "main", "commit": "abc1234"}


def test_a_request_without_a_token_is_refused_before_its_body_is_parsed(
    http: TestClient, store_state: StoreState
) -> None:
    before = store_state()
    response = http.post(
        f"{API}/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    error_of(response, 401)
    assert store_state() == before


def test_a_request_with_a_wrong_token_is_refused_before_its_body_is_parsed(
    http: TestClient,
) -> None:
    response = http.post(
        f"{API}/jobs",
        content=b"[" * 10_000,
        headers={"Content-Type": "application/json", **bearer("bc_wrong")},
    )
    assert "invalid" in error_of(response, 401)


def test_an_absurdly_long_token_is_refused_without_a_lookup(http: TestClient) -> None:
    error_of(http.get(f"{API}/jobs", headers=bearer("x" * 100_000)), 401)


def test_a_body_declared_larger_than_the_limit_gets_413(
    http: TestClient, store_state: StoreState
) -> None:
    before = store_state()
    padding = "x" * (1024 * 1024)
    response = http.post(
        f"{API}/jobs", content=json.dumps({**JOB, "trigger": padding}), headers=OPERATOR
    )
    assert "larger than 1048576 bytes" in error_of(response, 413)
    assert store_state() == before


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(
    http: TestClient, store_state: StoreState
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"branch": "main", "commit": "abc1234", "trigger": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    before = store_state()
    response = http.post(
        f"{API}/jobs", content=chunks(), headers={**OPERATOR, "Content-Type": "application/json"}
    )
    assert "content-length" not in {key.lower() for key in response.request.headers}
    error_of(response, 413)
    assert store_state() == before


def app_with(store: Store, clock: FakeClock, **settings: Any) -> FastAPI:
    """The app of a second coordinator on the test's store, with other settings."""
    coordinator = Coordinator(store, Settings(admin_token=ADMIN_TOKEN, **settings), clock)
    coordinator.start()
    return create_app(coordinator)


@pytest.fixture
def small_limit_http(store: Store, clock: FakeClock) -> Iterator[TestClient]:
    """A coordinator whose request bodies may have at most 200 bytes (uploads 400)."""
    app = app_with(store, clock, max_request_bytes=200, max_upload_bytes=400)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def test_the_body_limits_are_settings_with_a_larger_one_for_uploads(
    small_limit_http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    job = operator.submit_job("main", "abc1234")
    leased = agent.client.claim_job("build1")
    assert leased is not None
    assert leased.id == job.id
    reason = "r" * 150
    completion = {
        "status": "failed",
        "reason": reason,
        "server": "build1",
        "fencing_token": leased.fencing_token,
    }
    # 250 bytes: over the default limit of 200, under the upload limit of 400.
    assert 200 < len(json.dumps(completion)) < 400
    cancel = small_limit_http.post(
        f"{API}/jobs/{job.id}/cancel", json={"reason": reason * 2}, headers=OPERATOR
    )
    error_of(cancel, 413)
    done = small_limit_http.post(
        f"{API}/jobs/{job.id}/complete", json=completion, headers=bearer(agent.token)
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "failed"


# -- NUL bytes and unstorable text ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/servers/a%00b",
        f"{API}/locks/lock%00name",
        f"{API}/jobs?branch=ma%00in",
        f"{API}/messages?to=build%001",
        f"{API}/branches/ma%00in",
    ],
)
def test_a_nul_byte_in_a_path_or_query_gets_422(http: TestClient, path: str) -> None:
    assert "NUL" in error_of(http.get(path, headers=OPERATOR), 422)


def test_a_nul_byte_in_a_path_without_a_token_still_gets_a_4xx(http: TestClient) -> None:
    error_of(http.get(f"{API}/servers/a%00b"), 422)


NUL_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("/tokens", {"name": "ci\x00"}),
    ("/messages", {"sender": "build1", "recipient": "all", "subject": "s\x00"}),
    ("/messages", {"sender": "build1", "recipient": "all", "subject": "s", "body": "\x00"}),
    ("/branches", {"name": "main", "repo": "/tmp/r\x00", "command": "make"}),
    ("/branches", {"name": "main", "repo": "/tmp/r", "command": "make\x00"}),
    ("/jobs", {"branch": "main\x00", "commit": "abc1234"}),
    ("/locks/acquire", {"name": "deploy", "holder": "build1\x00"}),
    ("/servers", {"name": "build9", "labels": ["os=deb\x00ian"]}),
]


@pytest.mark.parametrize(("route", "body"), NUL_BODIES)
def test_a_nul_byte_in_any_text_field_gets_422_on_both_backends(
    http: TestClient, store_state: StoreState, route: str, body: dict[str, Any]
) -> None:
    before = store_state()
    assert "NUL" in error_of(http.post(f"{API}{route}", json=body, headers=OPERATOR), 422)
    assert store_state() == before


def running_job(operator: Client, register_agent: RegisterAgent) -> tuple[int, int, str]:
    """A job leased to build1: its id, fencing token and build1's agent token."""
    agent = register_agent("build1")
    job = operator.submit_job("main", "abc1234")
    leased = agent.client.claim_job("build1")
    assert leased is not None
    assert leased.id == job.id
    return job.id, leased.fencing_token, agent.token


def test_a_nul_byte_in_a_log_entrys_details_key_gets_422(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    job_id, fencing, token = running_job(operator, register_agent)
    before = store_state()
    entries = [{"message": "ok", "details": {"deep": [{"k\x00ey": 1}]}}]
    body = {"server": "build1", "fencing_token": fencing, "entries": entries}
    error_of(http.post(f"{API}/jobs/{job_id}/log", json=body, headers=bearer(token)), 422)
    assert store_state() == before


def test_a_nul_byte_in_a_completion_reason_gets_422_and_the_job_stays_running(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    job_id, fencing, token = running_job(operator, register_agent)
    before = store_state()
    body = {"status": "failed", "reason": "oops\x00", "server": "build1", "fencing_token": fencing}
    error_of(http.post(f"{API}/jobs/{job_id}/complete", json=body, headers=bearer(token)), 422)
    assert store_state() == before
    assert operator.get_job(job_id).status == "running"


def test_a_lone_surrogate_in_a_text_field_gets_422(
    http: TestClient, store_state: StoreState
) -> None:
    before = store_state()
    raw = b'{"sender": "build1", "recipient": "all", "subject": "\\ud800"}'
    response = http.post(
        f"{API}/messages", content=raw, headers={**OPERATOR, "Content-Type": "application/json"}
    )
    assert "surrogate" in error_of(response, 422)
    assert store_state() == before


def test_details_nested_deeper_than_the_limit_get_422(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    job_id, fencing, token = running_job(operator, register_agent)
    details: dict[str, Any] = {}
    node = details
    for _ in range(40):
        node["d"] = {}
        node = node["d"]
    entries = [{"message": "deep", "details": details}]
    body = {"server": "build1", "fencing_token": fencing, "entries": entries}
    error_of(http.post(f"{API}/jobs/{job_id}/log", json=body, headers=bearer(token)), 422)


# -- numbers the database cannot hold --------------------------------------------------------------


def test_a_manifest_size_beyond_64_bits_gets_422_and_the_job_stays_running(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    job_id, fencing, token = running_job(operator, register_agent)
    before = store_state()
    manifest = [{"path": "a.tar.gz", "size": 2**63, "sha256": "0" * 64}]
    body = {"status": "succeeded", "server": "build1", "fencing_token": fencing}
    response = http.post(
        f"{API}/jobs/{job_id}/complete",
        json={**body, "manifest": manifest, "artifact_root": "/tmp/a"},
        headers=bearer(token),
    )
    error_of(response, 422)
    assert store_state() == before
    assert operator.get_job(job_id).status == "running"


@pytest.mark.parametrize(
    "query",
    [
        "/comparisons?job=328023526117635260416",
        "/jobs?limit=100000000000000000000000",
        "/messages?limit=0",
        "/events?limit=1000000",
        "/events?after=-1",
    ],
)
def test_a_query_number_out_of_range_gets_422(http: TestClient, query: str) -> None:
    error_of(http.get(f"{API}{query}", headers=OPERATOR), 422)


@pytest.mark.parametrize("field", ["priority", "capacity"])
def test_an_integer_beyond_32_bits_gets_422(
    http: TestClient, store_state: StoreState, field: str
) -> None:
    before = store_state()
    if field == "priority":
        response = http.post(f"{API}/jobs", json={**JOB, "priority": 2**40}, headers=OPERATOR)
    else:
        body = {"name": "pool", "holder": "build1", "capacity": 2**40}
        response = http.post(f"{API}/locks/acquire", json=body, headers=OPERATOR)
    error_of(response, 422)
    assert store_state() == before


def test_the_api_description_can_be_made_private(store: Store, clock: FakeClock) -> None:
    with TestClient(app_with(store, clock, api_docs=False), base_url=BASE_URL) as client:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert client.get(path).status_code == 404


def test_the_api_description_is_public_by_default(http: TestClient) -> None:
    assert http.get("/openapi.json").status_code == 200
    assert http.get("/docs").status_code == 200
