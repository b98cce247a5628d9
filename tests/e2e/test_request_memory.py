"""Large bodies against a real `serve` on loopback: refused unread, memory stays bounded."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from live_fleet import ADMIN_TOKEN, LiveFleet, live_fleet

pytestmark = pytest.mark.timeout(180)

MIB = 1024 * 1024
BODY_BYTES = 100 * MIB
SENDERS = 4
MEMORY_HEADROOM = 64 * MIB
"""How much the coordinator may grow while 8 clients push 100 MiB bodies at it: a little
over the 1 MiB each authenticated one may have read, plus the allocator's slack."""


def request_head(port: int, *, token: str | None, chunked: bool) -> bytes:
    """The head of a POST /api/v1/jobs announcing a 100 MiB body."""
    lines = [
        "POST /api/v1/jobs HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def push_body(port: int, *, token: str | None, chunked: bool) -> bytes:
    """Send a head and up to 100 MiB of body until the server stops taking it; its answer."""
    piece = b"[" * MIB
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request_head(port, token=token, chunked=chunked))
        with contextlib.suppress(OSError):
            for _ in range(BODY_BYTES // MIB):
                conn.sendall(frame)
        with contextlib.suppress(OSError):
            return conn.recv(4096)
    return b""


def peak_rss_while(fleet: LiveFleet, work: list[threading.Thread]) -> tuple[int, int]:
    """The coordinator's resident memory before the threads start and its peak while they run."""
    assert fleet.coordinator is not None
    process = psutil.Process(fleet.coordinator.pid)
    before = process.memory_info().rss
    peak = before
    for thread in work:
        thread.start()
    deadline = time.monotonic() + 150
    while any(thread.is_alive() for thread in work) and time.monotonic() < deadline:
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.02)
    for thread in work:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in work), "a sender did not finish"
    return before, peak


def test_a_body_announced_without_a_token_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    with live_fleet(tmp_path / "fleet") as fleet:
        with socket.create_connection(("127.0.0.1", fleet.port), timeout=10) as conn:
            conn.sendall(request_head(fleet.port, token=None, chunked=False))
            answer = conn.recv(4096)  # no byte of the body was sent: a reader would wait
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]


def test_concurrent_large_bodies_leave_the_coordinators_memory_bounded(tmp_path: Path) -> None:
    with live_fleet(tmp_path / "fleet") as fleet:
        answers: list[bytes] = []

        def sender(token: str | None, chunked: bool) -> threading.Thread:
            def run() -> None:
                answers.append(push_body(fleet.port, token=token, chunked=chunked))

            return threading.Thread(target=run)

        work = [sender(None, False) for _ in range(SENDERS)]
        work += [sender(ADMIN_TOKEN, True) for _ in range(SENDERS)]
        before, peak = peak_rss_while(fleet, work)
        statuses = sorted(answer[9:12].decode() for answer in answers)
        assert statuses == ["401"] * SENDERS + ["413"] * SENDERS, answers
        assert peak - before < MEMORY_HEADROOM, (
            f"resident memory grew by {(peak - before) / MIB:.0f} MiB "
            f"(from {before / MIB:.0f} MiB) while 8 clients sent 100 MiB bodies"
        )
        with fleet.client() as operator:
            assert operator.list_jobs() == []
