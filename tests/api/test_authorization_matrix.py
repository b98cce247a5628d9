"""Who may call what: every operation of the live OpenAPI document against every principal.

The table below declares, for each operation, the answer each kind of caller gets. A route
that appears in the OpenAPI document without a row fails the run, so a new route forces
a decision about who may call it. Each case is a valid request on the seeded fleet
(tests/seeded.py), so the authorisation decision, not validation or a missing object, is
what answers; every refused request (any 4xx) and every plain read must leave every table
as it was.

Principals:

* ``none``, ``wrong``, ``revoked``: no bearer token, an unknown one, a revoked one: 401.
* ``read``: a read-only token: reads everything but the token list and an agent's own
  channels (its session and its orders); every POST, PUT, PATCH and DELETE gets 403.
* ``self``: build1's agent acting as build1 (on build1's job, lock, message, order).
* ``other``: build1's agent naming build2 or build2's job, lock, message or order. Every
  write and every read of another server's own channel (session, orders to carry out,
  messages) gets 403. Reads of the shared fleet view (jobs, servers, logs, artifacts,
  rollback entries, predictions) answer 200: a read token sees them all, and an agent is
  no less trusted than the dashboard.
* ``operator``: the admin token, acting on build3's objects (so that it never finds
  build1's already changed): never 401 or 403.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from inprocess import ADMIN_TOKEN, API, bearer
from seeded import BRANCH, COMMIT, Restore, Seat, World
from store_rows import StoreState

PUBLIC = {
    "GET /api/v1/health": "a liveness probe: it answers without a token and changes nothing",
    "POST /api/v1/hooks/git": "authenticated by the HMAC signature of its body, not a token",
}

ANONYMOUS = ("none", "wrong", "revoked")
PRINCIPALS = (*ANONYMOUS, "read", "other", "self", "operator")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Query = dict[str, Any] | None
Call = tuple[str, Query, Any]
"""A path under /api/v1, its query parameters and its JSON body (None: no body)."""


@dataclass(frozen=True)
class Row:
    """How to call one operation for a seat, and the status each principal gets."""

    call: Callable[[World, Seat], Call]
    read: int
    self: int
    other: int
    operator: int
    stream: bool = False  # an endless event stream: only its first bytes are read

    def expected(self, principal: str) -> int:
        """The declared status for principal."""
        if principal in ANONYMOUS:
            return 401
        status: int = getattr(self, principal)
        return status


def fleet_read(call: Callable[[World, Seat], Call], status: int = 200) -> Row:
    """A read of the shared fleet view: every authenticated principal may make it."""
    return Row(call, read=status, self=status, other=status, operator=status)


def operator_only(call: Callable[[World, Seat], Call], status: int = 200) -> Row:
    """A change only operators may make."""
    return Row(call, read=403, self=403, other=403, operator=status)


def own(call: Callable[[World, Seat], Call], status: int = 200, read: int = 403) -> Row:
    """A change (or private read) an agent makes for its own server, as operators may."""
    return Row(call, read=read, self=status, other=403, operator=status)


def lease(seat: Seat) -> dict[str, Any]:
    """The server name and fencing token that prove seat's lease on its running job."""
    return {"server": seat.name, "fencing_token": seat.fencing_token}


TABLE: dict[str, Row] = {
    # jobs
    "POST /api/v1/jobs": operator_only(
        lambda w, s: ("/jobs", None, {"branch": BRANCH, "commit": COMMIT}), 201
    ),
    "GET /api/v1/jobs": fleet_read(lambda w, s: ("/jobs", {"server": s.name}, None)),
    "POST /api/v1/jobs/claim": own(lambda w, s: ("/jobs/claim", None, {"server": s.name})),
    "GET /api/v1/jobs/{job_id}": fleet_read(lambda w, s: (f"/jobs/{s.running_job}", None, None)),
    "POST /api/v1/jobs/{job_id}/renew": own(
        lambda w, s: (f"/jobs/{s.running_job}/renew", None, lease(s))
    ),
    "POST /api/v1/jobs/{job_id}/build-token": own(
        lambda w, s: (f"/jobs/{s.running_job}/build-token", None, lease(s))
    ),
    "POST /api/v1/jobs/{job_id}/complete": own(
        lambda w, s: (
            f"/jobs/{s.running_job}/complete",
            None,
            {"status": "succeeded", "exit_code": 0, **lease(s)},
        )
    ),
    "POST /api/v1/jobs/{job_id}/cancel": operator_only(
        lambda w, s: (f"/jobs/{s.running_job}/cancel", None, {"reason": "matrix"})
    ),
    "POST /api/v1/jobs/{job_id}/priority": operator_only(
        lambda w, s: (f"/jobs/{w.queued_jobs[0]}/priority", None, {"priority": 2})
    ),
    "POST /api/v1/jobs/{job_id}/retry": operator_only(
        lambda w, s: (f"/jobs/{w.cancelled_job}/retry", None, None)
    ),
    "POST /api/v1/jobs/{job_id}/log": own(
        lambda w, s: (
            f"/jobs/{s.running_job}/log",
            None,
            {**lease(s), "entries": [{"message": "compiling"}]},
        )
    ),
    "GET /api/v1/jobs/{job_id}/log": fleet_read(
        lambda w, s: (f"/jobs/{s.running_job}/log", None, None)
    ),
    "GET /api/v1/jobs/{job_id}/manifest": fleet_read(
        lambda w, s: (f"/jobs/{s.built_job}/manifest", None, None)
    ),
    # servers and agents
    "GET /api/v1/servers": fleet_read(lambda w, s: ("/servers", None, None)),
    "POST /api/v1/servers": operator_only(
        lambda w, s: ("/servers", None, {"name": "build9", "labels": ["mvn"]}), 201
    ),
    "GET /api/v1/servers/{name}": fleet_read(lambda w, s: (f"/servers/{s.name}", None, None)),
    # build3 is running a job: the operator gets past authorisation to the server's state.
    "DELETE /api/v1/servers/{name}": operator_only(
        lambda w, s: (f"/servers/{s.name}", None, None), 409
    ),
    "POST /api/v1/servers/{name}/heartbeat": own(
        lambda w, s: (f"/servers/{s.name}/heartbeat", None, {"metrics": {"cpu_percent": 5}})
    ),
    "POST /api/v1/agents/{server}/claim": own(lambda w, s: (f"/agents/{s.name}/claim", None, None)),
    "GET /api/v1/agents/{server}/session": Row(
        lambda w, s: (f"/agents/{s.name}/session", None, None),
        read=403,
        self=200,
        other=403,
        operator=200,
        stream=True,
    ),
    "GET /api/v1/agents/{server}/orders": own(
        lambda w, s: (f"/agents/{s.name}/orders", None, None)
    ),
    "POST /api/v1/agents/{server}/orders/{order_id}": own(
        lambda w, s: (
            f"/agents/{s.name}/orders/{s.order}",
            None,
            {"status": "failed", "error": "no such repository"},
        )
    ),
    "GET /api/v1/orders": fleet_read(lambda w, s: ("/orders", {"server": s.name}, None)),
    "GET /api/v1/orders/{order_id}": fleet_read(lambda w, s: (f"/orders/{s.order}", None, None)),
    # branches
    "GET /api/v1/branches": fleet_read(lambda w, s: ("/branches", None, None)),
    "POST /api/v1/branches": operator_only(
        lambda w, s: (
            "/branches",
            None,
            {"name": "feature/matrix", "repo": "/nonexistent/repository", "command": "true"},
        ),
        201,
    ),
    "POST /api/v1/branches/check-updates": operator_only(
        lambda w, s: ("/branches/check-updates", None, {"branches": [BRANCH]})
    ),
    "POST /api/v1/branches/queue-all": operator_only(
        lambda w, s: ("/branches/queue-all", None, None)
    ),
    "GET /api/v1/branches/{name}": fleet_read(lambda w, s: (f"/branches/{BRANCH}", None, None)),
    "PATCH /api/v1/branches/{name}": operator_only(
        lambda w, s: (f"/branches/{BRANCH}", None, {"enabled": False})
    ),
    "DELETE /api/v1/branches/{name}": operator_only(
        lambda w, s: (f"/branches/{BRANCH}", None, None), 204
    ),
    # locks
    "GET /api/v1/locks": fleet_read(lambda w, s: ("/locks", None, None)),
    "POST /api/v1/locks/acquire": own(
        lambda w, s: ("/locks/acquire", None, {"name": "deploy", "holder": s.name})
    ),
    "POST /api/v1/locks/renew": own(
        lambda w, s: (
            "/locks/renew",
            None,
            {"name": s.lock, "holder": s.name, "token": s.lock_token},
        )
    ),
    "POST /api/v1/locks/release": own(
        lambda w, s: (
            "/locks/release",
            None,
            {"name": s.lock, "holder": s.name, "token": s.lock_token},
        )
    ),
    "POST /api/v1/locks/recover": operator_only(lambda w, s: ("/locks/recover", None, None)),
    # messages
    "POST /api/v1/messages": own(
        lambda w, s: ("/messages", None, {"sender": s.name, "recipient": "all", "subject": "hi"}),
        201,
    ),
    "GET /api/v1/messages": Row(
        lambda w, s: ("/messages", {"to": s.name}, None),
        read=200,
        self=200,
        other=403,
        operator=200,
    ),
    "GET /api/v1/messages/stats": fleet_read(lambda w, s: ("/messages/stats", None, None)),
    "POST /api/v1/messages/read-all": own(
        lambda w, s: ("/messages/read-all", None, {"reader": s.name})
    ),
    "POST /api/v1/messages/archive": operator_only(
        lambda w, s: ("/messages/archive", None, {"days": 0})
    ),
    "GET /api/v1/messages/{message_id}": Row(
        lambda w, s: (f"/messages/{s.message}", {"reader": s.name}, None),
        read=200,
        self=200,
        other=403,
        operator=200,
    ),
    "POST /api/v1/messages/{message_id}/read": own(
        lambda w, s: (f"/messages/{s.message}/read", None, {"reader": s.name})
    ),
    "POST /api/v1/messages/{message_id}/ack": own(
        lambda w, s: (f"/messages/{s.message}/ack", None, {"server": s.name})
    ),
    # tokens and the system
    "GET /api/v1/tokens": Row(
        lambda w, s: ("/tokens", None, None), read=403, self=403, other=403, operator=200
    ),
    "POST /api/v1/tokens": operator_only(
        lambda w, s: ("/tokens", None, {"name": "ci", "kind": "read"}), 201
    ),
    "DELETE /api/v1/tokens/{token_id}": operator_only(
        lambda w, s: (f"/tokens/{w.spare_token_id}", None, None)
    ),
    "GET /api/v1/events": fleet_read(lambda w, s: ("/events", {"subject": s.name}, None)),
    "POST /api/v1/maintenance/step": operator_only(lambda w, s: ("/maintenance/step", None, None)),
    # alerts: the seeded fleet has none open, so reading or acknowledging one gets past
    # authorisation to its absence (404); who may ask is what the row checks.
    "POST /api/v1/servers/{name}/quarantine": operator_only(
        lambda w, s: (f"/servers/{s.name}/quarantine", None, {"reason": "matrix"})
    ),
    # No server is quarantined in the seeded fleet: the operator gets past authorisation to
    # the refusal (409).
    "POST /api/v1/servers/{name}/rotate-token": operator_only(
        lambda w, s: (f"/servers/{s.name}/rotate-token", None, {"grace_seconds": 60})
    ),
    "POST /api/v1/servers/{name}/resume": operator_only(
        lambda w, s: (f"/servers/{s.name}/resume", None, None), 409
    ),
    "GET /api/v1/fleet": fleet_read(lambda w, s: ("/fleet", None, None)),
    # legacy: the export and the seed's records hold every server's messages
    "POST /api/v1/legacy/import": operator_only(
        lambda w, s: (
            "/legacy/import",
            None,
            {"files": {"coordination/locks.json": '{"locks": {}}'}, "dry_run": False},
        )
    ),
    "GET /api/v1/legacy/export": Row(
        lambda w, s: ("/legacy/export", None, None), read=200, self=403, other=403, operator=200
    ),
    "GET /api/v1/legacy/records/{kind}/{key}": Row(
        lambda w, s: ("/legacy/records/job/job_404", None, None),
        read=404,
        self=403,
        other=403,
        operator=404,
    ),
    "GET /api/v1/fleet/trends": fleet_read(lambda w, s: ("/fleet/trends", {"window": "30d"}, None)),
    "GET /api/v1/alerts": fleet_read(lambda w, s: ("/alerts", {"all": "true"}, None)),
    "GET /api/v1/alerts/{alert_id}": fleet_read(lambda w, s: ("/alerts/999999", None, None), 404),
    "POST /api/v1/alerts/{alert_id}/ack": operator_only(
        lambda w, s: ("/alerts/999999/ack", None, None), 404
    ),
    "GET /api/v1/alerts/{alert_id}/deliveries": fleet_read(
        lambda w, s: ("/alerts/999999/deliveries", None, None), 404
    ),
    "POST /api/v1/alerts/notifiers/{name}/test": operator_only(
        lambda w, s: ("/alerts/notifiers/pager/test", None, None), 404
    ),
    "GET /api/v1/alerts/silences": fleet_read(lambda w, s: ("/alerts/silences", None, None)),
    "POST /api/v1/alerts/silences": operator_only(
        lambda w, s: ("/alerts/silences", None, {"rule": "disk_low", "seconds": 60.0}), 201
    ),
    "DELETE /api/v1/alerts/silences/{silence_id}": operator_only(
        lambda w, s: ("/alerts/silences/999999", None, None), 404
    ),
    # artifacts, comparisons, rollback
    "GET /api/v1/artifacts": fleet_read(lambda w, s: ("/artifacts", {"server": s.name}, None)),
    "GET /api/v1/artifacts/latest": fleet_read(
        lambda w, s: ("/artifacts/latest", {"branch": BRANCH, "server": s.name}, None)
    ),
    "POST /api/v1/artifacts/cleanup": operator_only(
        lambda w, s: ("/artifacts/cleanup", None, {"keep": 0, "server": s.name})
    ),
    "GET /api/v1/artifacts/{job_id}": fleet_read(
        lambda w, s: (f"/artifacts/{s.built_job}", None, None)
    ),
    "PUT /api/v1/artifacts/{job_id}/pin": operator_only(
        lambda w, s: (f"/artifacts/{s.built_job}/pin", None, None)
    ),
    "DELETE /api/v1/artifacts/{job_id}/pin": operator_only(
        lambda w, s: (f"/artifacts/{s.built_job}/pin", None, None)
    ),
    "GET /api/v1/comparisons": fleet_read(lambda w, s: ("/comparisons", {"branch": BRANCH}, None)),
    "GET /api/v1/comparisons/{comparison_id}": fleet_read(
        lambda w, s: (f"/comparisons/{w.comparison}", None, None)
    ),
    "GET /api/v1/rollback/builds": fleet_read(
        lambda w, s: ("/rollback/builds", {"branch": BRANCH}, None)
    ),
    "GET /api/v1/rollback/tags/{tag}": fleet_read(
        lambda w, s: (f"/rollback/tags/{s.tag}", None, None)
    ),
    "GET /api/v1/rollback/last-good/{branch}": fleet_read(
        lambda w, s: (f"/rollback/last-good/{BRANCH}", None, None)
    ),
    "POST /api/v1/rollback/cleanup": operator_only(
        lambda w, s: ("/rollback/cleanup", None, {"keep": 1, "branch": BRANCH})
    ),
    # predictions
    "GET /api/v1/predict/duration": fleet_read(
        lambda w, s: ("/predict/duration", {"branch": BRANCH, "server": s.name}, None)
    ),
    "GET /api/v1/predict/recommend": fleet_read(
        lambda w, s: ("/predict/recommend", {"branch": BRANCH}, None)
    ),
    "GET /api/v1/predict/stats": fleet_read(lambda w, s: ("/predict/stats", None, None)),
    "GET /api/v1/predict/queue": fleet_read(lambda w, s: ("/predict/queue", None, None)),
    "GET /api/v1/predict/history": fleet_read(
        lambda w, s: ("/predict/history", {"limit": 10}, None)
    ),
}


def openapi_operations(app: FastAPI) -> set[str]:
    """``METHOD /path`` for every operation the app's OpenAPI document lists."""
    return {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


# --- the table itself -------------------------------------------------------------------------


def test_every_operation_in_the_openapi_document_has_a_row(app: FastAPI) -> None:
    listed = openapi_operations(app)
    assert sorted(listed - TABLE.keys() - PUBLIC.keys()) == [], "declare who may call these"
    assert sorted((TABLE.keys() | PUBLIC.keys()) - listed) == [], "these routes are gone"
    assert not TABLE.keys() & PUBLIC.keys()


def test_the_table_lets_no_read_token_change_anything() -> None:
    writes = [key for key in TABLE if key.split()[0] in WRITES]
    assert writes
    assert [key for key in writes if TABLE[key].read != 403] == []


def test_the_table_lets_no_agent_write_as_another_server() -> None:
    writes = [key for key in TABLE if key.split()[0] in WRITES]
    assert [key for key in writes if TABLE[key].other != 403] == []


def test_the_table_never_refuses_an_operator() -> None:
    assert [key for key, row in TABLE.items() if row.operator in (401, 403)] == []


# --- the app against the table ----------------------------------------------------------------


def token_of(principal: str, world: World) -> str | None:
    """The bearer token principal sends."""
    return {
        "none": None,
        "wrong": "bc_not-a-real-token",
        "revoked": world.revoked_token,
        "read": world.read_token,
        "self": world.seats["build1"].token,
        "other": world.seats["build1"].token,
        "operator": ADMIN_TOKEN,
    }[principal]


def seat_of(principal: str, world: World) -> Seat:
    """The server whose objects the request names."""
    name = {"other": "build2", "operator": "build3"}.get(principal, "build1")
    return world.seats[name]


def first_answer(
    app: FastAPI, method: str, path: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    """Status and first body chunk of a request whose response may never end; then hang up."""
    status = 0
    chunks: list[bytes] = []
    answered = anyio.Event()

    async def receive() -> dict[str, Any]:
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            answered.set()

    async def run() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(key.lower().encode(), value.encode()) for key, value in headers.items()],
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
        }
        with anyio.fail_after(10):
            await app(scope, receive, send)

    anyio.run(run)
    return status, chunks[0] if chunks else b""


def answer(
    http: TestClient, app: FastAPI, row: Row, method: str, call: Call, token: str | None
) -> tuple[int, bytes]:
    """Send one case; return its status and body."""
    path, params, body = call
    headers = bearer(token) if token is not None else {}
    if row.stream:
        assert params is None
        return first_answer(app, method, API + path, headers)
    response = http.request(method, API + path, params=params, json=body, headers=headers)
    return response.status_code, response.content


@pytest.mark.parametrize("operation", sorted(TABLE))
def test_each_principal_gets_the_declared_answer(
    operation: str,
    http: TestClient,
    app: FastAPI,
    world: World,
    reseed: Restore,
    store_state: StoreState,
) -> None:
    row = TABLE[operation]
    method = operation.split()[0]
    seeded = store_state()
    wrong: list[str] = []
    for principal in PRINCIPALS:
        call = row.call(world, seat_of(principal, world))
        status, content = answer(http, app, row, method, call, token_of(principal, world))
        expected = row.expected(principal)
        if status != expected:
            wrong.append(f"{principal}: {status} (declared {expected}): {content[:200]!r}")
        if 400 <= status < 500 and list(json.loads(content)) != ["error"]:
            wrong.append(f"{principal}: {status} with a body other than one error: {content!r}")
        if status < 300 and (method in WRITES or row.stream):
            reseed()  # the next principal finds the fleet as seeded
        elif store_state() != seeded:  # refused, or a plain read: nothing may change
            wrong.append(f"{principal}: answered {status} but the store changed")
            reseed()
    assert wrong == [], "\n".join([operation, *wrong])


# --- the audit trail ----------------------------------------------------------------------------

OPERATOR_ACTOR = "operator:admin (BUILDCOORD_ADMIN_TOKEN)"


def events_after(http: TestClient, cursor: int) -> list[dict[str, Any]]:
    """Every event after cursor, in order."""
    found: list[dict[str, Any]] = []
    while True:
        page = http.get(
            f"{API}/events", params={"after": cursor, "limit": 1000}, headers=bearer(ADMIN_TOKEN)
        ).json()
        found.extend(page)
        if len(page) < 1000:
            return found
        cursor = page[-1]["id"]


LEASE_TRAFFIC = {
    "POST /api/v1/jobs/{job_id}/renew": "a lease holder's renewal, every few seconds",
    "POST /api/v1/jobs/{job_id}/build-token": "a lease holder's token for its build",
    "POST /api/v1/jobs/{job_id}/log": "a lease holder's log lines: the log is their record",
}
"""Writes of a job's lease holder (an operator may make them for it): not audited actions."""

OPERATOR_CHANGES = sorted(
    key
    for key, row in TABLE.items()
    if key.split()[0] in WRITES and row.operator < 300 and key not in LEASE_TRAFFIC
)
"""Every write an operator makes successfully on the seeded fleet (the table says which)."""


@pytest.mark.parametrize("operation", OPERATOR_CHANGES)
def test_every_change_an_operator_makes_is_in_the_audit_trail_under_its_tokens_name(
    operation: str, http: TestClient, app: FastAPI, world: World, reseed: Restore
) -> None:
    row = TABLE[operation]
    method = operation.split()[0]
    before = events_after(http, 0)
    cursor = before[-1]["id"] if before else 0
    call = row.call(world, seat_of("operator", world))
    status, content = answer(http, app, row, method, call, ADMIN_TOKEN)
    try:
        assert status == row.operator, content[:200]
        actors = {event["actor"] for event in events_after(http, cursor)}
        assert OPERATOR_ACTOR in actors, f"{operation} answered {status}; events by {actors}"
    finally:
        reseed()
