"""/api/v1/health: whether the coordinator and its database can do their work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from starlette.testclient import TestClient

from buildcoord.clock import FakeClock
from buildcoord.services.system import PROBE_EVERY_SECONDS
from buildcoord.store import Store
from inprocess import API


def refuse_writes(store: Store) -> Callable[[], None]:
    """Make the database refuse every write on the store's connections; return the undo.

    The refusal is the database's own: SQLite's query_only answers "attempt to write a
    readonly database", as for a read-only file; PostgreSQL refuses writes in a read-only
    session, as a standby does. (Root ignores file modes, so a read-only file is no test.)
    """
    sqlite = store.engine.dialect.name == "sqlite"

    def read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if sqlite:
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_connection.commit()
        cursor.close()

    event.listen(store.engine, "connect", read_only)
    store.engine.dispose()  # the pooled connections were opened before: open new ones

    def undo() -> None:
        event.remove(store.engine, "connect", read_only)
        store.engine.dispose()

    return undo


def test_health_is_degraded_with_the_reason_when_the_database_refuses_writes(
    http: TestClient, store: Store
) -> None:
    refuse_writes(store)
    response = http.get(f"{API}/health")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert "read" in body["reason"].lower()
    assert "\n" not in body["reason"]
    assert body["database"] == store.engine.dialect.name


def test_health_is_ok_again_once_the_database_takes_writes(
    http: TestClient, store: Store, clock: FakeClock
) -> None:
    undo = refuse_writes(store)
    assert http.get(f"{API}/health").status_code == 503
    undo()
    assert http.get(f"{API}/health").status_code == 503  # the last probe is a few seconds old
    clock.advance(PROBE_EVERY_SECONDS)
    response = http.get(f"{API}/health")
    assert (response.status_code, response.json()["status"]) == (200, "ok")
