"""A real `serve` keeps an idle kept-alive connection open past an agent's heartbeat interval."""

from __future__ import annotations

import http.client
import select
import socket
import time
from pathlib import Path

import pytest

from buildcoord.agent.options import AgentOptions
from buildcoord.cli import serve
from buildcoord.client import transport
from live_fleet import live_fleet

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

HEARTBEAT_INTERVAL = AgentOptions(name="x", workdir=Path(".")).heartbeat_interval


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end closed the connection (end-of-file waiting to be read)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_idle_connection_outlives_the_heartbeat_interval(tmp_path: Path, workers: str) -> None:
    with live_fleet(tmp_path / "fleet", workers=workers) as fleet:
        connection = http.client.HTTPConnection("127.0.0.1", fleet.port, timeout=10)
        try:
            connection.request("GET", "/api/v1/health")
            first = connection.getresponse()
            first.read()
            assert first.status == 200
            sock = connection.sock
            assert sock is not None
            local = sock.getsockname()

            time.sleep(HEARTBEAT_INTERVAL + 1.5)

            assert not _closed_by_peer(sock)
            connection.request("GET", "/api/v1/health")
            second = connection.getresponse()
            second.read()
            assert second.status == 200
            assert connection.sock is sock
            assert sock.getsockname() == local
        finally:
            connection.close()


def test_the_agent_client_reuses_its_connection_after_a_heartbeat_interval(
    tmp_path: Path,
) -> None:
    assert HEARTBEAT_INTERVAL < transport.KEEPALIVE_EXPIRY < serve.KEEP_ALIVE_SECONDS
    with live_fleet(tmp_path / "fleet") as fleet, fleet.client() as client:
        first = client.http.get("health")
        first.raise_for_status()
        before = first.extensions["network_stream"].get_extra_info("client_addr")

        time.sleep(HEARTBEAT_INTERVAL + 1.5)

        second = client.http.get("health")
        second.raise_for_status()
        assert second.extensions["network_stream"].get_extra_info("client_addr") == before


def test_the_client_reads_its_clock_skew_from_the_coordinators_date(tmp_path: Path) -> None:
    with live_fleet(tmp_path / "fleet") as fleet, fleet.client() as client:
        assert client.clock_skew_seconds is None
        client.list_servers()
        skew = client.clock_skew_seconds

    assert skew is not None
    assert abs(skew) < 2.0  # one machine, one clock: the header's whole seconds and a trip
