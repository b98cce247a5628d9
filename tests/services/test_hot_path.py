"""The claim/complete hot path: prebuilt SQL on the driver's cursor.

It must write exactly what the same statements write through SQLAlchemy (the path taken when
something listens to the engine), roll back as one transaction, and never hand out a pooled
PostgreSQL connection the server has closed (there is no pool_pre_ping any more).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import OperationalError

import buildcoord.store.engine as engine_module
import buildcoord.store.jobs as jobs_module
from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, NotFound
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.store.engine import read_transaction
from buildcoord.store.schema import metadata

from .conftest import StoreState

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OPERATOR = Principal("operator", "admin")
NewStore = Callable[[], Store]


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]
)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewStore]:
    """Open fresh, migrated stores of one backend (each on its own empty database)."""
    with ExitStack() as stack:

        def make() -> Store:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / secrets.token_hex(4)}.db"
            else:
                server = request.getfixturevalue("postgres_server")
                url = stack.enter_context(server.fresh_database())
            store = Store.open(url)
            stack.callback(store.close)
            return store

        yield make


def _table_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table; token hashes left out (their secrets are random)."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with read_transaction(engine) as conn:
        for table in metadata.sorted_tables:
            columns = [column for column in table.columns if column.name != "token_hash"]
            order = list(table.primary_key.columns) or columns
            rows[table.name] = [tuple(row) for row in conn.execute(select(*columns).order_by(*order))]
    return rows


def _scenario(store: Store) -> list[tuple[str, Any]]:
    """Claims with labels and paging, completions, refusals, dependencies, an agent claim."""
    clock = FakeClock()
    queue = Coordinator(store, Settings(), clock)
    queue.servers.register("plain", by=OPERATOR)
    queue.servers.register("gpu", ["gpu", "linux"], by=OPERATOR)
    queue.branches.add("built", repo="/srv/repo", command="make", by=OPERATOR)
    agents = {
        name: Principal("agent", f"agent {name}", server=name) for name in ("plain", "gpu")
    }
    results: list[tuple[str, Any]] = []

    def attempt(label: str, call: Callable[[], Any]) -> Any:
        try:
            value = call()
        except (Conflict, NotFound) as error:
            results.append((label, f"{type(error).__name__}: {error}"))
            return None
        results.append((label, value))
        return value

    ids: list[int] = []
    for number in range(36):
        clock.advance(1.5)
        job = queue.queue.submit(
            "built" if number % 7 == 0 else "main",
            COMMIT,
            priority=1 + number % 3,
            labels=["gpu"] if number < 20 and number % 2 == 0 else [],
            depends_on=[ids[number - 3]] if number % 5 == 4 else [],
            by=OPERATOR,
        )
        ids.append(job.id)
    for step in range(24):
        clock.advance(0.25)
        name = "gpu" if step % 3 == 0 else "plain"
        agent = agents[name]
        job = attempt(f"claim {step}", lambda: queue.queue.claim_next(name, by=agent))
        if job is None:
            continue
        clock.advance(0.5)
        if step % 4 == 1:
            attempt(
                f"stale token {step}",
                lambda: queue.queue.complete(
                    job.id,
                    status="succeeded",
                    server=name,
                    fencing_token=job.fencing_token + 1,
                    by=agent,
                ),
            )
            attempt(
                f"renew {step}",
                lambda: queue.queue.renew(
                    job.id, server=name, fencing_token=job.fencing_token, by=agent
                ),
            )
        status = "failed" if step % 5 == 2 else "succeeded"
        if step % 6 == 5:
            attempt(
                f"operator completes {step}",
                lambda: queue.queue.complete(job.id, status=status, exit_code=3, by=OPERATOR),
            )
        else:
            attempt(
                f"complete {step}",
                lambda: queue.queue.complete(
                    job.id,
                    status=status,
                    exit_code=0 if status == "succeeded" else 1,
                    duration=1.25 if step % 2 else None,
                    server=name,
                    fencing_token=job.fencing_token,
                    by=agent,
                ),
            )
        attempt(
            f"complete again {step}",
            lambda: queue.queue.complete(
                job.id, status="succeeded", server=name, fencing_token=job.fencing_token, by=agent
            ),
        )
    attempt("unknown server", lambda: queue.queue.claim_next("ghost", by=OPERATOR))
    attempt("agent claim", lambda: queue.agents.claim("plain", by=agents["plain"]))
    attempt("agent claim of nothing", lambda: queue.agents.claim("gpu", by=agents["gpu"]))
    return results


def test_the_driver_path_writes_what_the_same_sql_writes_through_sqlalchemy(
    new_store: NewStore,
) -> None:
    direct = new_store()
    watched = new_store()
    sent: list[str] = []
    # A listener on the engine sends the hot path through SQLAlchemy's own execution.
    event.listen(watched.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))

    direct_results = _scenario(direct)
    watched_results = _scenario(watched)

    assert direct_results == watched_results
    assert _table_rows(direct.engine) == _table_rows(watched.engine)
    assert any(statement.startswith("UPDATE jobs SET status = 'running'") for statement in sent)
    assert any(statement.lstrip().startswith("WITH claimed") for statement in sent) or any(
        "INSERT INTO events" in statement for statement in sent
    )


def test_a_failure_after_the_claims_update_rolls_the_whole_claim_back(
    coordinator: Coordinator,
    register_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    store_state: StoreState,
) -> None:
    agent = register_server("build1")
    coordinator.queue.submit("main", COMMIT, by=OPERATOR)
    before = store_state()

    def broken(values: Any) -> Any:
        raise RuntimeError("the row could not be read")

    monkeypatch.setattr(jobs_module, "_job", broken)  # runs after the UPDATE (and its event)
    with pytest.raises(RuntimeError, match="could not be read"):
        coordinator.queue.claim_next("build1", by=agent)

    assert store_state() == before


# -- pooled PostgreSQL connections ----------------------------------------------------------------


def _backend_pid(store: Store) -> int:
    with read_transaction(store.engine) as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(url: str, pid: int) -> None:
    """End one backend the way a server restart does, and wait until it is gone."""
    plain = store_url(url)
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.02)


def store_url(url: str) -> str:
    """The libpq URL of an engine URL (psycopg does not know the +psycopg driver suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.mark.postgresql
def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(
    postgres_url: str,
) -> None:
    store = Store.open(postgres_url)
    try:
        queue = Coordinator(store, Settings(), FakeClock())
        queue.servers.register("build1", by=OPERATOR)
        agent = Principal("agent", "agent build1", server="build1")
        queue.queue.submit("main", COMMIT, by=OPERATOR)
        queue.queue.submit("main", COMMIT, by=OPERATOR)
        assert store.engine.pool.checkedin() == 1  # one idle pooled connection
        old = _backend_pid(store)

        _terminate(postgres_url, old)

        job = queue.queue.claim_next("build1", by=agent)  # the hot path
        assert job is not None
        _terminate(postgres_url, _backend_pid(store))
        assert queue.queue.get(job.id, by=OPERATOR).status == "running"  # a Core read
        assert _backend_pid(store) != old
        assert store.engine.pool.checkedin() == 1
    finally:
        store.close()


@pytest.mark.postgresql
def test_a_connection_lost_unseen_fails_one_call_as_database_unavailable_then_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(postgres_url)
    try:
        queue = Coordinator(store, Settings(), FakeClock())
        queue.servers.register("build1", by=OPERATOR)
        agent = Principal("agent", "agent build1", server="build1")
        queue.queue.submit("main", COMMIT, by=OPERATOR)
        old = _backend_pid(store)
        # As if the server vanished without a word: the checkout cannot tell.
        monkeypatch.setattr(engine_module, "_readable", lambda fd: False)
        _terminate(postgres_url, old)

        with pytest.raises(OperationalError) as failure:
            queue.queue.claim_next("build1", by=agent)
        assert failure.value.connection_invalidated

        job = queue.queue.claim_next("build1", by=agent)
        assert job is not None
        assert _backend_pid(store) != old
    finally:
        store.close()
