"""Hostile requests to the dashboard get a clear refusal and change nothing."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from inprocess import ADMIN_TOKEN

from .test_pages import COMMIT, log_in


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/9223372036854775808",
        "/jobs/0",
        "/ui/jobs/1/log?after=-1",
        "/ui/jobs/1/log?after=99999999999999999999",
        "/servers?page=99999999",
        "/ui/panel/nonsense",
    ],
)
def test_an_id_cursor_or_page_out_of_range_is_refused_with_a_page(
    http: TestClient, path: str
) -> None:
    log_in(http)

    response = http.get(path)

    assert response.status_code in (404, 422)
    assert response.headers["content-type"].startswith("text/html")


def test_a_form_with_too_many_fields_or_a_nul_byte_changes_nothing(
    http: TestClient, operator: Client
) -> None:
    job = operator.submit_job("main", COMMIT)
    csrf = log_in(http)
    many = "&".join(f"f{n}=x" for n in range(100)) + f"&csrf={csrf}&priority=1"
    headers = {"content-type": "application/x-www-form-urlencoded"}

    assert (
        http.post(f"/ui/jobs/{job.id}/priority", content=many, headers=headers).status_code == 422
    )
    nul = f"csrf={csrf}&priority=1%00"
    assert http.post(f"/ui/jobs/{job.id}/priority", content=nul, headers=headers).status_code == 422
    huge = {"csrf": csrf, "priority": "9" * 5000}
    assert http.post(f"/ui/jobs/{job.id}/priority", data=huge).status_code == 422
    assert operator.get_job(job.id).priority == 5


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\r\nSet-Cookie: x=1", "/\\evil"]
)
def test_login_goes_only_to_a_path_on_this_site(http: TestClient, target: str) -> None:
    response = http.post(
        "/login", data={"token": ADMIN_TOKEN, "next": target}, follow_redirects=False
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_an_overlong_or_unknown_session_cookie_is_no_session(http: TestClient) -> None:
    for cookie in ("x" * 600, "not-a-token"):
        http.cookies.set("buildcoord_session", cookie)
        response = http.get("/", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        assert http.post("/ui/messages/read-all", data={"csrf": "x"}).status_code == 401
