"""The dashboard's session over HTTP, in process on both databases: the login form, the session
cookie's flags, CSRF on every action, no session (401) before any body is read, agents' and
revoked tokens, where login may send the browser, and forms that are too large or hold NUL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from buildcoord.client import Client
from inprocess import ADMIN_TOKEN, BASE_URL, RegisterAgent
from store_rows import StoreState

SESSION_COOKIE = "buildcoord_session"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def log_in(http: TestClient, token: str = ADMIN_TOKEN) -> str:
    """Log in through the form; return the CSRF token the session's pages carry."""
    response = http.post("/login", data={"token": token, "next": "/messages"})
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


def csrf_of(html: str) -> str:
    """The CSRF token a page carries in its forms."""
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def session_cookie(set_cookie: str) -> dict[str, str | bool]:
    """The session cookie's attributes from a Set-Cookie header, names in lower case."""
    parsed = SimpleCookie()
    parsed.load(set_cookie)
    morsel = parsed[SESSION_COOKIE]
    attributes: dict[str, str | bool] = {"value": morsel.value}
    attributes.update({key: value for key, value in morsel.items() if value})
    return attributes


def unread_message(operator: Client) -> int:
    """Send a message nobody has read; its id."""
    sent = operator.send_message(
        sender="build1", recipient="all", type="info", subject="disk", body=""
    )
    return sent.id


# --- the session cookie -----------------------------------------------------------------------


def test_logging_in_sets_the_token_as_an_httponly_samesite_strict_cookie_for_a_week(
    http: TestClient,
) -> None:
    response = http.post(
        "/login", data={"token": ADMIN_TOKEN, "next": "/queue"}, follow_redirects=False
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/queue"
    cookie = session_cookie(response.headers["set-cookie"])
    assert cookie == {
        "value": ADMIN_TOKEN,
        "httponly": True,
        "samesite": "strict",
        "path": "/",
        "max-age": str(7 * 86400),
    }
    assert "secure" not in cookie  # the page came over plain HTTP


@pytest.fixture
def https(app: FastAPI) -> Iterator[TestClient]:
    """A client whose requests come over HTTPS."""
    with TestClient(app, base_url=BASE_URL.replace("http:", "https:")) as client:
        yield client


def test_the_session_cookie_is_secure_when_the_login_came_over_https(https: TestClient) -> None:
    response = https.post("/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)

    assert response.status_code == 303
    cookie = session_cookie(response.headers["set-cookie"])
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "strict"


def test_logging_out_with_the_csrf_token_drops_the_cookie(http: TestClient) -> None:
    csrf = log_in(http)

    response = http.post("/logout", data={"csrf": csrf}, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    cookie = session_cookie(response.headers["set-cookie"])
    assert cookie["value"] == ""
    assert cookie["max-age"] == "0"
    assert http.get("/", follow_redirects=False).status_code == 303


def test_logging_out_without_the_csrf_token_is_refused_and_keeps_the_session(
    http: TestClient,
) -> None:
    log_in(http)

    response = http.post("/logout", data={}, follow_redirects=False)

    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert http.get("/", follow_redirects=False).status_code == 200


# --- CSRF ----------------------------------------------------------------------------------------


def test_an_action_with_the_sessions_csrf_token_is_done(http: TestClient, operator: Client) -> None:
    message_id = unread_message(operator)
    csrf = log_in(http)

    response = http.post(
        f"/ui/messages/{message_id}/read", data={"csrf": csrf}, follow_redirects=False
    )

    assert response.status_code == 303
    assert operator.get_message(message_id).read


def test_an_action_without_a_csrf_token_is_refused_with_403_and_changes_nothing(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    message_id = unread_message(operator)
    log_in(http)
    before = store_state()

    for body in ({}, {"csrf": ""}):
        response = http.post(f"/ui/messages/{message_id}/read", data=body)
        assert response.status_code == 403
        assert "CSRF" in response.text

    assert store_state() == before


def test_an_action_with_a_wrong_csrf_token_is_refused_with_403_in_the_form_or_the_header(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    message_id = unread_message(operator)
    csrf = log_in(http)
    wrong = ("0" if csrf[0] != "0" else "1") + csrf[1:]
    before = store_state()

    assert http.post(f"/ui/messages/{message_id}/read", data={"csrf": wrong}).status_code == 403
    answer = http.post(f"/ui/messages/{message_id}/read", headers={"X-CSRF-Token": wrong})
    assert answer.status_code == 403

    assert store_state() == before


def test_another_sessions_csrf_token_is_refused(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    message_id = unread_message(operator)
    other = operator.create_token("second-operator", kind="operator").secret
    other_csrf = log_in(http, other)
    mine = log_in(http)
    assert other_csrf != mine
    before = store_state()

    response = http.post(f"/ui/messages/{message_id}/read", data={"csrf": other_csrf})

    assert response.status_code == 403
    assert store_state() == before


def test_a_read_only_sessions_action_with_its_csrf_token_is_refused_with_403(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    message_id = unread_message(operator)
    viewer = operator.create_token("wall-screen", kind="read").secret
    csrf = log_in(http, viewer)
    before = store_state()

    response = http.post(f"/ui/messages/{message_id}/read", data={"csrf": csrf})

    assert response.status_code == 403
    assert store_state() == before


# --- no session ---------------------------------------------------------------------------------


def test_an_action_without_a_session_is_refused_with_401_before_its_body_is_read(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    message_id = unread_message(operator)
    before = store_state()
    larger_than_any_limit = b"csrf=" + b"x" * (2 * 1024 * 1024)

    for body in (b"csrf=whatever", larger_than_any_limit, b"\xff\x00not a form"):
        response = http.post(f"/ui/messages/{message_id}/read", content=body, headers=FORM)
        assert response.status_code == 401
        assert response.json() == {"error": "log in first: this action needs an operator's session"}

    assert store_state() == before


def test_an_agents_token_as_the_session_cookie_is_no_session(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")
    message_id = unread_message(operator)
    http.cookies.set(SESSION_COOKIE, agent.token)

    page = http.get("/messages", follow_redirects=False)
    action = http.post(f"/ui/messages/{message_id}/read", data={"csrf": "x" * 64})

    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/messages"
    assert action.status_code == 401
    assert not operator.get_message(message_id).read


def test_a_revoked_tokens_session_ends_at_once(http: TestClient, operator: Client) -> None:
    issued = operator.create_token("laptop", kind="operator")
    message_id = unread_message(operator)
    csrf = log_in(http, issued.secret)
    operator.revoke_token(issued.token.id)

    page = http.get("/messages", follow_redirects=False)
    action = http.post(f"/ui/messages/{message_id}/read", data={"csrf": csrf})

    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")
    assert action.status_code == 401
    assert not operator.get_message(message_id).read


# --- the login form -----------------------------------------------------------------------------


def test_an_agents_token_cannot_log_in_and_gets_no_cookie(
    http: TestClient, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build1")

    response = http.post("/login", data={"token": agent.token}, follow_redirects=False)

    assert response.status_code == 401
    assert "That is an agent&#39;s token" in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("token", ["", "bc_unknown", "x" * 513])
def test_a_missing_unknown_or_overlong_token_cannot_log_in(http: TestClient, token: str) -> None:
    response = http.post("/login", data={"token": token}, follow_redirects=False)

    assert response.status_code == 401
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/queue",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_login_never_sends_the_browser_to_another_site(http: TestClient, target: str) -> None:
    form = http.get("/login", params={"next": target})
    response = http.post(
        "/login", data={"token": ADMIN_TOKEN, "next": target}, follow_redirects=False
    )

    assert 'name="next" value="/"' in form.text
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_login_goes_back_to_the_page_and_query_asked_for(http: TestClient) -> None:
    response = http.post(
        "/login",
        data={"token": ADMIN_TOKEN, "next": "/servers?q=linux&status=stale"},
        follow_redirects=False,
    )

    assert response.headers["location"] == "/servers?q=linux&status=stale"


def test_a_page_asked_for_without_a_session_is_remembered_for_after_login(
    http: TestClient,
) -> None:
    response = http.get("/servers?q=linux", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/servers%3Fq%3Dlinux"


def test_a_login_form_larger_than_the_limit_is_refused_before_it_is_read(
    http: TestClient,
) -> None:
    padding = "x" * (1024 * 1024)

    response = http.post("/login", data={"token": ADMIN_TOKEN, "padding": padding})

    assert response.status_code == 413
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "body",
    [b"token=" + ADMIN_TOKEN.encode() + b"\x00", b"token=" + ADMIN_TOKEN.encode() + b"&next=\xff"],
    ids=["nul", "not-utf-8"],
)
def test_a_login_form_with_a_raw_nul_byte_or_not_utf_8_is_refused(
    http: TestClient, body: bytes
) -> None:
    response = http.post("/login", content=body, headers=FORM, follow_redirects=False)

    assert response.status_code == 422
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/login", f"token={ADMIN_TOKEN}%00"),
        ("/login", f"token={ADMIN_TOKEN}&next=/queue%00"),
        ("/ui/alerts/silence", "rule=heartbeat_stale&subject=build1%00evil&hours=2"),
    ],
    ids=["login-token", "login-next", "silence-subject"],
)
def test_a_form_with_a_nul_byte_escaped_as_percent_00_is_refused_with_422_and_changes_nothing(
    http: TestClient, store_state: StoreState, path: str, fields: str
) -> None:
    csrf = log_in(http)
    http.cookies.clear()
    if path != "/login":
        http.cookies.set(SESSION_COOKIE, ADMIN_TOKEN)
    before = store_state()

    response = http.post(
        path, content=f"csrf={csrf}&{fields}".encode(), headers=FORM, follow_redirects=False
    )

    assert response.status_code == 422
    assert "set-cookie" not in response.headers
    assert store_state() == before


def test_a_query_with_a_nul_byte_is_refused_before_the_page(http: TestClient) -> None:
    log_in(http)

    response = http.get("/servers?q=linux%00")

    assert response.status_code == 422
