"""/api/v1/legacy over HTTP: the token before the body, the body's shape, the files' text."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from inprocess import ADMIN_TOKEN, API, bearer

LOCKS = json.dumps({"locks": {"deploy": {"locked_by": None, "locked_at": None}}})


def test_an_import_without_a_token_is_refused_before_its_body_is_read(http: TestClient) -> None:
    huge = b'{"files": {"coordination/locks.json": "' + b"x" * 5_000_000 + b'"}}'
    response = http.post(
        f"{API}/legacy/import", content=huge, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


def test_an_import_of_a_file_that_is_not_text_is_a_422_and_changes_nothing(
    http: TestClient,
) -> None:
    response = http.post(
        f"{API}/legacy/import",
        json={"files": {"coordination/locks.json": {"locks": {}}}},
        headers=bearer(ADMIN_TOKEN),
    )
    assert response.status_code == 422
    assert http.get(f"{API}/locks", headers=bearer(ADMIN_TOKEN)).json() == []


def test_an_import_answers_what_it_did_and_export_gives_the_files_back(http: TestClient) -> None:
    response = http.post(
        f"{API}/legacy/import",
        json={"files": {"coordination/locks.json": LOCKS}},
        headers=bearer(ADMIN_TOKEN),
    )
    assert response.status_code == 200, response.text
    assert response.json()["added"]["lock"] == 1
    exported = http.get(f"{API}/legacy/export", headers=bearer(ADMIN_TOKEN)).json()["files"]
    assert exported["coordination/locks.json"]["locks"] == {
        "deploy": {"locked_by": None, "locked_at": None, "expires_at": None}
    }
    record = http.get(f"{API}/legacy/records/lock/deploy", headers=bearer(ADMIN_TOKEN))
    assert record.json()["local_id"] == "deploy"
    unknown = http.get(f"{API}/legacy/records/beer/deploy", headers=bearer(ADMIN_TOKEN))
    assert unknown.status_code == 422


def test_a_directory_that_is_not_a_seed_checkout_is_a_422_naming_what_it_lacks(
    http: TestClient,
) -> None:
    response = http.post(
        f"{API}/legacy/import",
        json={"files": {"notes/readme.json": "{}"}},
        headers=bearer(ADMIN_TOKEN),
    )
    assert response.status_code == 422
    assert "not a seed checkout" in response.text
    assert "nothing imported" in response.text
