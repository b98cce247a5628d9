"""Notifications: alerts sent to real HTTP receivers on loopback, once each, signed, retried
with backoff, given up, never held up by another notifier — on both databases."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Forbidden, NotFound
from buildcoord.models import Metrics, Principal
from buildcoord.notifier_config import NotifierSettings
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.notifications import MAX_ATTEMPTS, retry_delay
from buildcoord.store import Store

SECRET = "s3cret-hook-key"


class Receiver:
    """An HTTP server on loopback that records every POST and answers as told."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.posts.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def documents(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(post["body"]) for post in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def hook(receiver: Receiver, **fields: Any) -> NotifierSettings:
    values: dict[str, Any] = {"name": "hook", "kind": "webhook", "url": receiver.url, **fields}
    return NotifierSettings(**values)


def with_notifiers(
    store: Store, settings: Settings, clock: FakeClock, *notifiers: NotifierSettings
) -> Coordinator:
    return Coordinator(store, dataclasses.replace(settings, notifiers=notifiers), clock)


def stale(coordinator: Coordinator, operator: Principal, clock: FakeClock, *names: str) -> None:
    """Register the servers, let each send a heartbeat, then fall silent for 20 s."""
    for name in names:
        coordinator.servers.register(name, (), by=operator)
        agent = Principal("agent", f"agent {name}", server=name)
        coordinator.servers.heartbeat(name, metrics=Metrics(), by=agent)
    clock.advance(20)


def test_an_alert_opening_and_resolving_are_each_sent_once_signed(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    receivers: Callable[[], Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = receivers()
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    coordinator = with_notifiers(store, settings, clock, hook(receiver, secret_env="HOOK_SECRET"))
    stale(coordinator, operator, clock, "build1")
    [alert] = coordinator.monitor.step().opened

    assert coordinator.notifications.deliver_due("hook") == 1
    assert coordinator.notifications.deliver_due("hook") == 0
    coordinator.monitor.step()  # a repeat: nobody is told again
    agent = Principal("agent", "agent build1", server="build1")
    coordinator.servers.heartbeat("build1", metrics=Metrics(), by=agent)
    coordinator.monitor.step()
    clock.advance(settings.resolve_after_seconds)
    coordinator.servers.heartbeat("build1", metrics=Metrics(), by=agent)
    assert coordinator.monitor.step().resolved
    assert coordinator.notifications.deliver_due("hook") == 1

    opened, resolved = receiver.documents()
    assert (opened["event"], opened["alert"]["id"], opened["alert"]["rule"]) == (
        "opened",
        alert.id,
        "heartbeat_stale",
    )
    assert resolved["event"] == "resolved"
    assert resolved["alert"]["resolved_at"] is not None
    for post in receiver.posts:
        expected = hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
        assert post["headers"]["X-Buildcoord-Signature-256"] == f"sha256={expected}"
    deliveries = coordinator.notifications.deliveries(alert.id, by=operator)
    assert [(d.event, d.attempts, d.sent_at is not None) for d in deliveries] == [
        ("opened", 1, True),
        ("resolved", 1, True),
    ]


def test_a_refusing_notifier_is_retried_with_backoff_then_given_up(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    receivers: Callable[[], Receiver],
) -> None:
    receiver = receivers()
    receiver.status = 500
    coordinator = with_notifiers(store, settings, clock, hook(receiver))
    stale(coordinator, operator, clock, "build1")
    [alert] = coordinator.monitor.step().opened

    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert coordinator.notifications.deliver_due("hook") == 0
        assert len(receiver.posts) == attempt
        [delivery] = coordinator.notifications.deliveries(alert.id, by=operator)
        assert delivery.attempts == attempt
        assert delivery.last_error == "refused: HTTP 500 ok"
        if attempt < MAX_ATTEMPTS:
            clock.advance(retry_delay(attempt) - 1)
            coordinator.notifications.deliver_due("hook")  # not due yet: nothing sent
            assert len(receiver.posts) == attempt
            clock.advance(1)

    assert delivery.gave_up_at is not None
    clock.advance(7 * 86_400)
    coordinator.notifications.deliver_due("hook")
    assert len(receiver.posts) == MAX_ATTEMPTS


def test_a_hanging_notifier_times_out_without_holding_up_another(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    receivers: Callable[[], Receiver],
) -> None:
    hanging, chat = receivers(), receivers()
    hanging.delay = 3.0
    slow = hook(hanging, timeout_seconds=0.3)
    team = NotifierSettings(name="team", kind="slack", url=chat.url)
    coordinator = with_notifiers(store, settings, clock, slow, team)
    stale(coordinator, operator, clock, "build1")
    [alert] = coordinator.monitor.step().opened

    stop = coordinator.notifications.start()  # one sender thread per notifier
    try:
        deadline = time.monotonic() + 10
        while not chat.posts and time.monotonic() < deadline:
            time.sleep(0.02)
        assert chat.documents() == [{"text": f"WARNING heartbeat_stale: {alert.summary}"}]
        while time.monotonic() < deadline:
            states = {
                d.notifier: d for d in coordinator.notifications.deliveries(alert.id, by=operator)
            }
            if states["hook"].attempts:
                break
            time.sleep(0.02)
    finally:
        stop()
    assert states["hook"].last_error == "no answer within 0.3 s"
    assert states["team"].sent_at is not None


def test_coordinators_sending_at_once_send_each_notification_once(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    receivers: Callable[[], Receiver],
) -> None:
    receiver = receivers()
    coordinators = [with_notifiers(store, settings, clock, hook(receiver)) for _ in range(3)]
    stale(coordinators[0], operator, clock, *(f"build{n}" for n in range(6)))
    opened = coordinators[0].monitor.step().opened
    start = threading.Barrier(len(coordinators))

    def drain(coordinator: Coordinator) -> None:
        start.wait()
        for _ in range(10):
            coordinator.notifications.deliver_due("hook", limit=2)

    threads = [threading.Thread(target=drain, args=(each,)) for each in coordinators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    sent = sorted(document["alert"]["id"] for document in receiver.documents())
    assert sent == sorted(alert.id for alert in opened)
    assert len(sent) == 6


def test_an_unwanted_or_silenced_alert_is_not_sent(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    receivers: Callable[[], Receiver],
) -> None:
    receiver = receivers()
    offline_only = hook(receiver, rules=("server_offline",))
    coordinator = with_notifiers(store, settings, clock, offline_only)
    stale(coordinator, operator, clock, "build1", "build2")
    coordinator.alerts.silence("server_offline", "build2", seconds=86_400, by=operator)
    clock.advance(settings.offline_after_seconds)
    coordinator.monitor.step()
    coordinator.notifications.deliver_due("hook")

    [told] = receiver.documents()
    assert (told["alert"]["rule"], told["alert"]["subject"]) == ("server_offline", "build1")


def test_a_missing_secret_fails_the_delivery_and_no_reason_shows_the_url(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    receivers: Callable[[], Receiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = receivers()
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    gone = NotifierSettings(name="gone", kind="slack", url="http://127.0.0.1:9/secret-path")
    coordinator = with_notifiers(
        store, settings, clock, hook(receiver, secret_env="HOOK_SECRET"), gone
    )
    stale(coordinator, operator, clock, "build1")
    [alert] = coordinator.monitor.step().opened
    coordinator.notifications.deliver_due("hook")
    coordinator.notifications.deliver_due("gone")

    states = {d.notifier: d for d in coordinator.notifications.deliveries(alert.id, by=operator)}
    assert states["hook"].last_error == "environment variable HOOK_SECRET is not set"
    assert receiver.posts == []
    assert (states["gone"].last_error or "").startswith("cannot reach the receiver")
    assert "secret-path" not in (states["gone"].last_error or "")


def test_a_test_message_goes_through_a_notifier_now(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    reader: Principal,
    receivers: Callable[[], Receiver],
) -> None:
    receiver = receivers()
    coordinator = with_notifiers(store, settings, clock, hook(receiver))

    assert coordinator.notifications.test("hook", by=operator) is None
    [document] = receiver.documents()
    assert (document["event"], document["alert"]["rule"]) == ("test", "test")
    with pytest.raises(Forbidden):
        coordinator.notifications.test("hook", by=reader)
    with pytest.raises(NotFound, match="no notifier 'pager'"):
        coordinator.notifications.test("pager", by=operator)
    receiver.status = 403
    assert coordinator.notifications.test("hook", by=operator) == "refused: HTTP 403 ok"
