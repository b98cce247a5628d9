"""/api/v1/messages: send, list, read, acknowledge, archive, stats, and refused requests."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.models import Message
from inprocess import ADMIN_TOKEN, API, RegisterAgent, bearer, error_of
from store_rows import StoreState

OPERATOR = bearer(ADMIN_TOKEN)
MESSAGE: dict[str, Any] = {"sender": "build1", "recipient": "build2", "subject": "hello"}


def send(operator: Client, recipient: str = "build2", **fields: Any) -> Message:
    """Send a message from build1 as the operator."""
    values: dict[str, Any] = {"type": "info", "subject": "hello", "body": "", **fields}
    return operator.send_message(sender="build1", recipient=recipient, **values)


# --- the main paths ---------------------------------------------------------------------------


def test_sending_a_message_returns_it_unread(http: TestClient) -> None:
    response = http.post(
        f"{API}/messages",
        json={**MESSAGE, "type": "warning", "body": "disk is filling up"},
        headers=OPERATOR,
    )
    assert response.status_code == 201
    message = response.json()
    assert (message["sender"], message["recipient"], message["type"]) == (
        "build1",
        "build2",
        "warning",
    )
    assert message["body"] == "disk is filling up"
    assert message["read"] is False


def test_a_subject_of_100_and_a_body_of_10000_characters_are_accepted(http: TestClient) -> None:
    body = {**MESSAGE, "subject": "s" * 100, "body": "b" * 10_000}
    assert http.post(f"{API}/messages", json=body, headers=OPERATOR).status_code == 201


def test_listing_orders_error_warning_request_info_then_oldest(
    http: TestClient, operator: Client, clock: FakeClock
) -> None:
    for kind in ("info", "request", "error", "warning", "error"):
        send(operator, type=kind, subject=kind)
        clock.advance(1)
    listed = http.get(f"{API}/messages", headers=OPERATOR).json()
    assert [message["type"] for message in listed] == [
        "error",
        "error",
        "warning",
        "request",
        "info",
    ]
    errors = [message["id"] for message in listed[:2]]
    assert errors == sorted(errors)


def test_listing_for_a_server_shows_its_messages_and_broadcasts(
    http: TestClient, operator: Client
) -> None:
    mine = send(operator, recipient="build2")
    everyone = send(operator, recipient="all")
    send(operator, recipient="build3")
    listed = http.get(f"{API}/messages", params={"to": "build2"}, headers=OPERATOR).json()
    assert {message["id"] for message in listed} == {mine.id, everyone.id}


def test_listing_unread_leaves_out_read_messages(http: TestClient, operator: Client) -> None:
    read = send(operator)
    unread = send(operator)
    operator.mark_message_read(read.id, reader="build2")
    listed = http.get(
        f"{API}/messages", params={"to": "build2", "unread": "true"}, headers=OPERATOR
    ).json()
    assert [message["id"] for message in listed] == [unread.id]


def test_marking_a_message_read_reports_whether_it_changed(
    http: TestClient, operator: Client
) -> None:
    message = send(operator)
    path = f"{API}/messages/{message.id}/read"
    assert http.post(path, json={"reader": "build2"}, headers=OPERATOR).json() == {"changed": True}
    assert http.post(path, json={"reader": "build2"}, headers=OPERATOR).json() == {"changed": False}
    assert operator.get_message(message.id, reader="build2").read is True


def test_marking_all_read_for_one_server_leaves_others_unread(
    http: TestClient, operator: Client
) -> None:
    send(operator, recipient="build2")
    send(operator, recipient="all")
    other = send(operator, recipient="build3")
    response = http.post(f"{API}/messages/read-all", json={"reader": "build2"}, headers=OPERATOR)
    assert response.json() == {"count": 2}
    unread = operator.list_messages(recipient="build3", unread=True)
    assert other.id in [message.id for message in unread]


def test_an_agent_reads_its_own_messages(
    http: TestClient, operator: Client, register_agent: RegisterAgent
) -> None:
    agent = register_agent("build2")
    message = send(operator, recipient="build2")
    response = http.post(f"{API}/messages/{message.id}/read", json={}, headers=bearer(agent.token))
    assert response.json() == {"changed": True}
    assert operator.get_message(message.id, reader="build2").read is True


def test_the_recipient_acknowledges_a_message_that_asks_for_it(
    http: TestClient, operator: Client
) -> None:
    message = send(operator, ack_required=True)
    response = http.post(
        f"{API}/messages/{message.id}/ack", json={"server": "build2"}, headers=OPERATOR
    )
    assert response.status_code == 200
    assert response.json()["acknowledged_by"] == ["build2"]
    assert response.json()["read"] is True


def test_archiving_moves_old_read_messages_aside_but_keeps_them(
    http: TestClient, operator: Client, clock: FakeClock
) -> None:
    old = send(operator)
    unread_old = send(operator)
    operator.mark_message_read(old.id)
    clock.advance(3 * 86400)
    recent = send(operator)
    operator.mark_message_read(recent.id)
    response = http.post(f"{API}/messages/archive", json={"days": 2}, headers=OPERATOR)
    assert response.json() == {"count": 1}
    current = [message.id for message in operator.list_messages()]
    assert current == [unread_old.id, recent.id]
    archived = http.get(f"{API}/messages", params={"archived": "yes"}, headers=OPERATOR).json()
    assert [message["id"] for message in archived] == [old.id]


def test_stats_count_messages_by_state_and_type(
    http: TestClient, operator: Client, clock: FakeClock
) -> None:
    first = send(operator, type="error")
    send(operator, type="info")
    send(operator, type="info")
    operator.mark_message_read(first.id)
    clock.advance(40 * 86400)
    operator.archive_messages()
    stats = http.get(f"{API}/messages/stats", headers=OPERATOR).json()
    assert stats == {
        "total": 2,
        "unread": 2,
        "read": 0,
        "by_type": {"info": 2},
        "archived": 1,
    }


# --- refused requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        pytest.param({"subject": "s" * 101}, "subject", id="subject-101-chars"),
        pytest.param({"body": "b" * 10_001}, "body", id="body-10001-chars"),
        pytest.param({"type": "gossip"}, "gossip", id="unknown-type"),
        pytest.param({"sender": "bad sender"}, "sender", id="sender-invalid"),
        pytest.param({"sender": "build1\n"}, "sender", id="sender-trailing-newline"),
        pytest.param({"priority": "high"}, "priority", id="unknown-field"),
    ],
)
def test_sending_bad_input_gets_422_and_changes_nothing(
    http: TestClient, store_state: StoreState, change: dict[str, Any], mentions: str
) -> None:
    before = store_state()
    response = http.post(f"{API}/messages", json={**MESSAGE, **change}, headers=OPERATOR)
    assert mentions in error_of(response, 422)
    assert store_state() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/messages/999", None, id="show"),
        pytest.param("POST", "/messages/999/read", {}, id="read"),
        pytest.param("POST", "/messages/999/ack", {"server": "build2"}, id="ack"),
    ],
)
def test_an_unknown_message_id_gets_404_and_changes_nothing(
    http: TestClient,
    operator: Client,
    store_state: StoreState,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    send(operator)
    before = store_state()
    response = http.request(method, f"{API}{path}", json=body, headers=OPERATOR)
    assert "999" in error_of(response, 404)
    assert store_state() == before


def test_acknowledging_a_message_that_did_not_ask_gets_409(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    message = send(operator)
    before = store_state()
    response = http.post(
        f"{API}/messages/{message.id}/ack", json={"server": "build2"}, headers=OPERATOR
    )
    error_of(response, 409)
    assert store_state() == before


def test_acknowledging_someone_elses_message_gets_409(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    message = send(operator, ack_required=True)
    before = store_state()
    response = http.post(
        f"{API}/messages/{message.id}/ack", json={"server": "build3"}, headers=OPERATOR
    )
    assert "build2" in error_of(response, 409)
    assert store_state() == before


def test_an_agent_cannot_send_as_another_server(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build3")
    before = store_state()
    response = http.post(f"{API}/messages", json=MESSAGE, headers=bearer(agent.token))
    error_of(response, 403)
    assert store_state() == before


def test_an_agent_cannot_mark_another_servers_messages_read(
    http: TestClient, operator: Client, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build3")
    message = send(operator, recipient="build2")
    before = store_state()
    response = http.post(
        f"{API}/messages/{message.id}/read", json={"reader": "build2"}, headers=bearer(agent.token)
    )
    error_of(response, 403)
    assert store_state() == before


def test_a_read_token_cannot_send(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    secret = operator.create_token("dashboard", kind="read").secret
    before = store_state()
    error_of(http.post(f"{API}/messages", json=MESSAGE, headers=bearer(secret)), 403)
    assert store_state() == before


def test_a_read_token_cannot_mark_a_message_read(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    secret = operator.create_token("dashboard", kind="read").secret
    message = send(operator)
    before = store_state()
    response = http.post(f"{API}/messages/{message.id}/read", json={}, headers=bearer(secret))
    error_of(response, 403)
    assert store_state() == before


def test_a_read_token_cannot_mark_all_messages_read(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    secret = operator.create_token("dashboard", kind="read").secret
    send(operator)
    before = store_state()
    response = http.post(f"{API}/messages/read-all", json={}, headers=bearer(secret))
    error_of(response, 403)
    assert store_state() == before


def test_archiving_with_negative_days_gets_422(
    http: TestClient, operator: Client, store_state: StoreState
) -> None:
    operator.mark_message_read(send(operator).id)
    before = store_state()
    response = http.post(f"{API}/messages/archive", json={"days": -1}, headers=OPERATOR)
    assert "days" in error_of(response, 422)
    assert store_state() == before


def test_an_agent_cannot_archive(
    http: TestClient, register_agent: RegisterAgent, store_state: StoreState
) -> None:
    agent = register_agent("build1")
    before = store_state()
    response = http.post(f"{API}/messages/archive", json={}, headers=bearer(agent.token))
    error_of(response, 403)
    assert store_state() == before


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": 0}, id="limit-zero"),
        pytest.param({"archived": "maybe"}, id="archived-unknown"),
    ],
)
def test_listing_with_bad_parameters_gets_422(http: TestClient, params: dict[str, Any]) -> None:
    error_of(http.get(f"{API}/messages", params=params, headers=OPERATOR), 422)
