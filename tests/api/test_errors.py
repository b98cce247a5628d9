"""Every refusal, whatever refuses it, is a 4xx with a ``{"error": "<one line>"}`` body."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from inprocess import ADMIN_TOKEN, API, RegisterAgent, bearer, error_of
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)
HEALTH = f"{API}/health"
TOO_BIG = 2**70  # beyond any 64-bit column


def test_an_unknown_path_gets_404_with_an_error_body(http: TestClient) -> None:
    error_of(http.get(f"{API}/nothing-here", headers=OPERATOR), 404)


def test_an_unsupported_method_gets_405_with_an_error_body(http: TestClient) -> None:
    error_of(http.put(f"{API}/jobs", json={}, headers=OPERATOR), 405)


def test_a_missing_body_gets_422_naming_the_body(http: TestClient, store_state: StoreState) -> None:
    before = store_state()
    assert "body" in error_of(http.post(f"{API}/jobs", headers=OPERATOR), 422)
    assert store_state() == before


def test_a_body_that_is_not_an_object_gets_422(http: TestClient, store_state: StoreState) -> None:
    before = store_state()
    error_of(http.post(f"{API}/jobs", json=["main", "abc1234"], headers=OPERATOR), 422)
    assert store_state() == before


def test_a_job_id_beyond_64_bits_gets_a_4xx(http: TestClient) -> None:
    response = http.get(f"{API}/jobs/{TOO_BIG}", headers=OPERATOR)
    assert response.status_code in (404, 422)
    error_of(response, response.status_code)


def test_a_dependency_id_beyond_64_bits_gets_a_4xx_and_changes_nothing(
    http: TestClient, store_state: StoreState
) -> None:
    before = store_state()
    response = http.post(
        f"{API}/jobs",
        json={"branch": "main", "commit": "abc1234", "depends_on": [TOO_BIG]},
        headers=OPERATOR,
    )
    assert response.status_code in (404, 422)
    error_of(response, response.status_code)
    assert store_state() == before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"exit_code": TOO_BIG}, id="exit-code-beyond-64-bits"),
        pytest.param({"exit_code": 2**40}, id="exit-code-beyond-32-bits"),
        pytest.param({"fencing_token": TOO_BIG}, id="fencing-token-beyond-64-bits"),
    ],
)
def test_completing_with_an_out_of_range_number_gets_a_4xx_and_changes_nothing(
    http: TestClient,
    operator: Client,
    register_agent: RegisterAgent,
    store_state: StoreState,
    change: dict[str, Any],
) -> None:
    agent = register_agent("build1")
    operator.submit_job("main", "abc1234")
    job = agent.client.claim_job("build1")
    assert job is not None
    before = store_state()
    response = http.post(
        f"{API}/jobs/{job.id}/complete", json={"status": "failed", **change}, headers=OPERATOR
    )
    assert 400 <= response.status_code < 500
    error_of(response, response.status_code)
    assert store_state() == before


def test_the_openapi_document_declares_every_error_answer_with_its_body(http: TestClient) -> None:
    document = http.get("/openapi.json").json()
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "409", "413", "422", "503"):
                declared = operation["responses"].get(status)
                assert declared is not None, (method, path, status)
                if (path, status) == (HEALTH, "503"):
                    continue  # degraded health answers with its report, not an error
                assert declared["content"]["application/json"]["schema"] == error
    assert document["components"]["schemas"]["ErrorOut"]["required"] == ["error"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
