"""A heartbeat lost with its connection is sent again at once, once; an error answer is not.

The coordinator here is a loopback TCP server of the test's own, so that it can close or reset
a connection the way a real server closing a kept-alive connection does.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buildcoord.agent.agent import Agent
from buildcoord.agent.options import AgentOptions
from buildcoord.client import Client
from buildcoord.errors import NotFound, Unavailable

pytestmark = pytest.mark.timeout(30)

SERVER = {
    "name": "build1",
    "labels": [],
    "status": "online",
    "registered_at": "2026-01-01T00:00:00Z",
    "last_heartbeat_at": "2026-01-01T00:00:00Z",
    "heartbeat_age_seconds": 0.0,
    "metrics": None,
    "agent_version": None,
    "running_jobs": [],
    "reported_labels": [],
}


def _answer(status: int, body: object) -> bytes:
    """An HTTP/1.1 response with a JSON body, keeping the connection open."""
    payload = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def _read_request(conn: socket.socket) -> bytes:
    """Read one request (head and Content-Length body); b'' if the client hung up."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


Reply = Callable[[socket.socket], None]


def _close(conn: socket.socket) -> None:
    """Close without answering, as a server ending an idle kept-alive connection does."""
    conn.close()


def _reset(conn: socket.socket) -> None:
    """Reset the connection (RST instead of FIN) without answering."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _respond(status: int, body: object) -> Reply:
    def reply(conn: socket.socket) -> None:
        conn.sendall(_answer(status, body))

    return reply


class Coordinator:
    """Answers the n-th request with the n-th reply, and counts the requests."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.requests < len(self.replies):
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                while self.requests < len(self.replies) and _read_request(conn):
                    reply = self.replies[self.requests]
                    self.requests += 1
                    reply(conn)
                    if reply in (_close, _reset):
                        break

    def close(self) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes the accept() waiting in _serve
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def coordinator_with(tmp_path: Path) -> Iterator[Callable[..., tuple[Agent, Coordinator]]]:
    """An agent for build1 talking to a loopback coordinator that gives the replies given."""
    opened: list[tuple[Client, Coordinator]] = []

    def start(*replies: Reply) -> tuple[Agent, Coordinator]:
        coordinator = Coordinator(list(replies))
        client = Client(f"http://127.0.0.1:{coordinator.port}", "secret", timeout=5.0)
        opened.append((client, coordinator))
        return Agent(client, AgentOptions(name="build1", workdir=tmp_path / "build1")), coordinator

    yield start
    for client, coordinator in opened:
        client.close()
        coordinator.close()


@pytest.mark.parametrize("lost", [_close, _reset], ids=["closed", "reset"])
def test_a_heartbeat_lost_with_its_connection_is_sent_again_once(
    coordinator_with: Callable[..., tuple[Agent, Coordinator]], lost: Reply
) -> None:
    agent, coordinator = coordinator_with(lost, _respond(200, SERVER))

    agent._send_heartbeat()

    assert coordinator.requests == 2


def test_a_heartbeat_lost_twice_is_reported_unavailable(
    coordinator_with: Callable[..., tuple[Agent, Coordinator]],
) -> None:
    agent, coordinator = coordinator_with(_close, _close, _respond(200, SERVER))

    with pytest.raises(Unavailable):
        agent._send_heartbeat()

    assert coordinator.requests == 2


@pytest.mark.parametrize(
    ("status", "error"), [(404, NotFound), (503, Unavailable)], ids=["404", "503"]
)
def test_a_heartbeat_answered_with_an_error_is_not_sent_again(
    coordinator_with: Callable[..., tuple[Agent, Coordinator]],
    status: int,
    error: type[Exception],
) -> None:
    agent, coordinator = coordinator_with(_respond(status, {"error": "no"}), _respond(200, SERVER))

    with pytest.raises(error):
        agent._send_heartbeat()

    assert coordinator.requests == 1
