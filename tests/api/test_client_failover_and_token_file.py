"""The client's two ways through a change without a restart: a list of coordinator URLs (the
next takes over when one cannot be reached) and a token file read again on a 401."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from buildcoord.client import Client
from buildcoord.client.transport import coordinator_urls, read_token_file
from buildcoord.errors import InvalidInput, Unauthorized, Unavailable
from buildcoord.models import Metrics
from inprocess import ADMIN_TOKEN, Connect
from live_fleet import free_port
from loopback_http import Loopback


class Health(BaseHTTPRequestHandler):
    """Answers GET /api/v1/health like a coordinator."""

    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "version": "test"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_coordinator_that_cannot_be_reached_hands_the_request_to_the_next_url() -> None:
    live = Loopback(Health)
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        with Client(f"{dead}, {live.url}/", None, timeout=5) as client:
            assert client.health()["status"] == "ok"
            assert client.base_url == live.url  # and the next request goes there first
            assert client.health()["status"] == "ok"
    finally:
        live.close()


def test_when_no_coordinator_can_be_reached_the_error_names_one_and_the_next_call_goes_on() -> None:
    first, second = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    with Client(f"{first},{second}", None, timeout=5) as client:
        with pytest.raises(Unavailable, match="cannot reach the coordinator at http://127"):
            client.health()
        assert client.base_url in (first, second)


@pytest.mark.parametrize(
    "value", ["", " , ", "127.0.0.1:8765", "ftp://host", "http://", "http://a,localhost:1"]
)
def test_a_url_list_that_is_not_urls_is_refused_before_anything_is_sent(value: str) -> None:
    with pytest.raises(InvalidInput):
        coordinator_urls(value)


def test_a_rotated_token_written_to_the_token_file_is_taken_on_the_first_refusal(
    connect: Connect, tmp_path: Path
) -> None:
    operator = connect(ADMIN_TOKEN)
    _server, old = operator.register_server("build1", [])
    token_file = tmp_path / "token"
    token_file.write_text(old + "\n")
    agent = connect(None)
    agent.use_token_file(token_file)
    agent.heartbeat("build1", Metrics())

    rotated = operator.rotate_agent_token("build1", grace_seconds=0)
    with pytest.raises(Unauthorized):
        agent.heartbeat("build1", Metrics())  # the file still holds the ended token

    token_file.write_text(rotated.secret + "\n")
    agent.heartbeat("build1", Metrics())
    assert agent.get_server("build1").name == "build1"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "does not hold a token"),
        (b"two words\n", "does not hold a token"),
        (b"bc_\x00abc", "does not hold a token"),
        (b"\xff\xfe", "does not hold a token"),
        (b"x" * 2000, "more than 1024 bytes"),
    ],
)
def test_a_token_file_without_a_token_is_refused_with_its_path(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=reason) as refused:
        read_token_file(path)
    assert str(path) in str(refused.value)
    with pytest.raises(InvalidInput, match="cannot read the token file"):
        read_token_file(tmp_path / "missing")
