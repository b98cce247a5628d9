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
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler
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
from loopback_http import Loopback, Receiver

SECRET = "s3cret-hook-key"


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


class GitHubStandIn:
    """A small local stand-in for GitHub's issue endpoints: create, comment, close."""

    def __init__(self, token: str) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.issues: dict[int, dict[str, Any]] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                document = json.loads(self.rfile.read(length) or b"{}")
                stand_in.calls.append((self.command, self.path, document))
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self._answer(401, {"message": "Bad credentials"})
                    return
                parts = self.path.strip("/").split("/")  # repos, owner, name, issues, ...
                if self.command == "POST" and len(parts) == 4:
                    number = len(stand_in.issues) + 1
                    stand_in.issues[number] = {**document, "state": "open", "comments": []}
                    self._answer(201, {"number": number})
                elif self.command == "POST" and parts[-1] == "comments":
                    stand_in.issues[int(parts[4])]["comments"].append(document["body"])
                    self._answer(201, {"id": 1})
                elif self.command == "PATCH":
                    stand_in.issues[int(parts[4])]["state"] = document["state"]
                    self._answer(200, {"number": int(parts[4])})
                else:
                    self._answer(404, {"message": "Not Found"})

            do_POST = _handle
            do_PATCH = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.loopback = Loopback(Handler)
        self.url = self.loopback.url

    def close(self) -> None:
        self.loopback.close()


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    monkeypatch.setenv("GH_TOKEN", "ghp-test-token-1234")
    stand_in = GitHubStandIn("ghp-test-token-1234")
    yield stand_in
    stand_in.close()


def issues_notifier(stand_in: GitHubStandIn, **fields: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "name": "issues",
        "kind": "github",
        "url": stand_in.url,
        "repo": "acme/builds",
        "secret_env": "GH_TOKEN",
        "repeat_minutes": 10,
        **fields,
    }
    return NotifierSettings(**values)


def test_github_gets_an_issue_per_alert_a_comment_per_reminder_and_a_close_on_resolve(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    github: GitHubStandIn,
) -> None:
    stale_only = issues_notifier(github, rules=("heartbeat_stale",))
    coordinator = with_notifiers(store, settings, clock, stale_only)
    stale(coordinator, operator, clock, "build1")
    [alert] = coordinator.monitor.step().opened
    coordinator.notifications.deliver_due("issues")
    clock.advance(11 * 60)  # offline by now too: that rule is not this notifier's
    coordinator.monitor.step()  # still stale: a reminder is due
    coordinator.notifications.deliver_due("issues")
    agent = Principal("agent", "agent build1", server="build1")
    coordinator.servers.heartbeat("build1", metrics=Metrics(), by=agent)
    coordinator.monitor.step()
    clock.advance(settings.resolve_after_seconds)
    coordinator.servers.heartbeat("build1", metrics=Metrics(), by=agent)
    coordinator.monitor.step()
    coordinator.notifications.deliver_due("issues")

    [issue] = github.issues.values()
    assert issue["title"] == f"🚨 Build Server Health Alert: {alert.summary}"
    assert issue["labels"] == ["health-alert", "automated", "priority-high"]
    assert "## 🚨 Alert opened" in issue["body"]
    assert [comment.splitlines()[0] for comment in issue["comments"]] == [
        "## ⏰ Still open",
        "## ✅ Resolved",
    ]
    assert issue["state"] == "closed"
    deliveries = coordinator.notifications.deliveries(alert.id, by=operator)
    assert [(d.event, d.sent_at is not None) for d in deliveries] == [
        ("opened", True),
        ("reminder", True),
        ("resolved", True),
    ]


def test_a_rejected_github_token_is_recorded_without_the_token(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    github: GitHubStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GH_TOKEN", "ghp-revoked-token-9999")
    coordinator = with_notifiers(store, settings, clock, issues_notifier(github))
    stale(coordinator, operator, clock, "build1")
    [alert] = coordinator.monitor.step().opened
    coordinator.notifications.deliver_due("issues")

    [delivery] = coordinator.notifications.deliveries(alert.id, by=operator)
    assert delivery.last_error == 'refused: HTTP 401 {"message": "Bad credentials"}'
    assert "ghp-revoked" not in (delivery.last_error or "")
    assert github.issues == {}


def test_a_github_test_message_opens_and_closes_an_issue(
    store: Store, settings: Settings, clock: FakeClock, operator: Principal, github: GitHubStandIn
) -> None:
    coordinator = with_notifiers(store, settings, clock, issues_notifier(github))

    assert coordinator.notifications.test("issues", by=operator) is None
    [issue] = github.issues.values()
    assert issue["state"] == "closed"
    assert issue["title"].startswith("🚨 Build Server Health Alert: a test of notifier issues")


class Mailbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def mail_server() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = _closed_port()  # free now; aiosmtpd binds it at once
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def mail_notifier(port: int, **fields: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "name": "mail",
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "sender": "buildcoord@example.com",
        "recipients": ("ops@example.com", "lead@example.com"),
        **fields,
    }
    return NotifierSettings(**values)


def test_an_alert_is_mailed_to_every_recipient(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    mail_server: tuple[Mailbox, int],
) -> None:
    mailbox, port = mail_server
    coordinator = with_notifiers(store, settings, clock, mail_notifier(port))
    stale(coordinator, operator, clock, "build1")
    [alert] = coordinator.monitor.step().opened

    assert coordinator.notifications.deliver_due("mail") == 1
    [envelope] = mailbox.messages
    assert envelope.rcpt_tos == ["ops@example.com", "lead@example.com"]
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert mail["Subject"] == f"[buildcoord] WARNING heartbeat_stale: {alert.summary}"
    assert mail["To"] == "ops@example.com, lead@example.com"
    assert "Alert opened" in mail.get_body().get_content()


def test_a_mail_server_without_starttls_or_down_is_a_recorded_failure(
    store: Store,
    settings: Settings,
    clock: FakeClock,
    operator: Principal,
    mail_server: tuple[Mailbox, int],
) -> None:
    mailbox, port = mail_server
    closed = _closed_port()
    coordinator = with_notifiers(
        store,
        settings,
        clock,
        mail_notifier(port, starttls=True),
        mail_notifier(closed, name="down"),
    )
    stale(coordinator, operator, clock, "build1")
    [alert] = coordinator.monitor.step().opened
    coordinator.notifications.deliver_due("mail")
    coordinator.notifications.deliver_due("down")

    states = {d.notifier: d for d in coordinator.notifications.deliveries(alert.id, by=operator)}
    assert states["mail"].last_error == "the mail server does not offer STARTTLS"
    assert (states["down"].last_error or "").startswith("cannot send mail: ConnectionRefusedError")
    assert mailbox.messages == []


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
