"""The claim/complete hot path: prebuilt SQL on the driver's cursor.

It must write exactly the same with SQL logging on (the driver logs its own statements), roll
back as one transaction, and never hand out a pooled PostgreSQL connection the server has
closed (there is no pool_pre_ping any more).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import OperationalError

import buildcoord.store.engine as engine_module
import buildcoord.store.job_leases as job_leases_module
from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, NotFound
from buildcoord.models import Principal
from buildcoord.services import maintenance
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.job_queries import CLAIM, CLAIM_RECORDING, COMPLETE
from buildcoord.store.schema import jobs, metadata
from sql_log import logged_statements
from store_rows import StoreState

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
            query = select(*columns).order_by(*(list(table.primary_key.columns) or columns))
            rows[table.name] = [tuple(row) for row in conn.execute(query)]
    return rows


def _scenario(store: Store) -> list[tuple[str, Any]]:
    """Claims with labels and paging, completions, refusals, dependencies, an agent claim."""
    clock = FakeClock()
    services = Coordinator(store, Settings(), clock)
    queue = services.queue
    services.servers.register("plain", by=OPERATOR)
    services.servers.register("gpu", ["gpu", "linux"], by=OPERATOR)
    services.branches.add("built", repo="/srv/repo", command="make", by=OPERATOR)
    agents = {name: Principal("agent", f"agent {name}", server=name) for name in ("plain", "gpu")}
    results: list[tuple[str, Any]] = []

    def attempt(label: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            value = call(*args, **kwargs)
        except (Conflict, NotFound) as error:
            results.append((label, f"{type(error).__name__}: {error}"))
            return None
        results.append((label, value))
        return value

    ids: list[int] = []
    for number in range(36):
        clock.advance(1.5)
        job = queue.submit(
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
        job = attempt(f"claim {step}", queue.claim_next, name, by=agent)
        if job is None:
            continue
        clock.advance(0.5)
        lease = {"server": name, "fencing_token": job.fencing_token}
        if step % 4 == 1:
            stale = {"server": name, "fencing_token": job.fencing_token + 1}
            attempt(f"stale {step}", queue.complete, job.id, status="succeeded", **stale, by=agent)
            attempt(f"renew {step}", queue.renew, job.id, **lease, by=agent)
        status = "failed" if step % 5 == 2 else "succeeded"
        if step % 6 == 5:
            attempt(f"operator {step}", queue.complete, job.id, status=status, by=OPERATOR)
        else:
            exit_code = 0 if status == "succeeded" else 1
            duration = 1.25 if step % 2 else None
            attempt(
                f"complete {step}",
                queue.complete,
                job.id,
                status=status,
                exit_code=exit_code,
                duration=duration,
                **lease,
                by=agent,
            )
        attempt(f"again {step}", queue.complete, job.id, status="succeeded", **lease, by=agent)
    attempt("unknown server", queue.claim_next, "ghost", by=OPERATOR)
    attempt("agent claim", services.agents.claim, "plain", by=agents["plain"])
    attempt("agent claim of nothing", services.agents.claim, "gpu", by=agents["gpu"])
    return results


def test_the_driver_path_writes_the_same_with_sql_logging_on_and_logs_its_statements(
    new_store: NewStore,
) -> None:
    direct = new_store()
    watched = new_store()

    direct_results = _scenario(direct)
    with logged_statements(watched.engine) as logged:
        watched_results = _scenario(watched)
    sent = [statement for statement, _parameters in logged]

    assert direct_results == watched_results
    assert _table_rows(direct.engine) == _table_rows(watched.engine)
    # ... and the driver logged what it ran: the claim's lease and its event.
    assert any("UPDATE jobs SET status = 'running'" in statement for statement in sent)
    assert any("INSERT INTO events" in statement for statement in sent)


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

    # The claim reads its row after the UPDATE (and its event).
    monkeypatch.setattr(job_leases_module, "job_from_row", broken)
    with pytest.raises(RuntimeError, match="could not be read"):
        coordinator.queue.claim_next("build1", by=agent)

    assert store_state() == before


def _write_plans(store: Store) -> list[str]:
    """The query plans of the claim's and the completion's writes, with real parameters."""
    sqlite = store.engine.dialect.name == "sqlite"
    claim = CLAIM if sqlite else CLAIM_RECORDING
    event = ("job.claimed", "job:1", None, None)
    writes = [
        (claim, ("build1", 2.0, 1.0, 1) if sqlite else ("build1", 2.0, 1.0, 1, 1.0, "a", *event)),
        (
            COMPLETE[(True, True)],
            ("succeeded", 1.0, 0, None, None, 1.0, 1.0, 1, "build1", 1),
        ),
    ]
    plans = []
    with read_transaction(store.engine) as conn:
        for statement, params in writes:
            text = statement.sqlite if sqlite else statement.postgresql
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            rows = conn.exec_driver_sql(prefix + text, params).all()
            plans.append("\n".join(str(row[-1] if sqlite else row[0]) for row in rows))
        conn.rollback()
    return plans


def test_the_claim_and_completion_find_their_row_by_primary_key_with_or_without_statistics(
    store: Store,
) -> None:
    rows = [
        {
            "branch": "main",
            "commit": COMMIT,
            "priority": 5,
            "status": "running" if number % 2 else "queued",
            "attempt": 1,
            "max_attempts": 3,
            "labels": "",
            "depends_on": "",
            "pending_deps": 0,
            "rank": float(number),
            "server": "build1" if number % 2 else None,
            "fencing_token": 1,
            "created_at": 0.0,
            "queued_at": 0.0,
        }
        for number in range(5_000)
    ]
    with write_transaction(store.engine) as conn:
        conn.execute(insert(jobs), rows)

    before = _write_plans(store)
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        conn.commit()
    after = _write_plans(store)

    for plan in before + after:
        assert "pk_jobs" in plan or "INTEGER PRIMARY KEY" in plan, plan
        assert "ix_jobs" not in plan, plan


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


# -- SQLite WAL checkpoints off the request path ------------------------------------------------


def test_the_wal_checkpoint_copies_committed_pages_on_sqlite_and_is_a_no_op_on_postgresql(
    store: Store, coordinator: Coordinator, register_server: Callable[..., Principal]
) -> None:
    agent = register_server("build1")
    for number in range(20):
        coordinator.queue.submit("main", f"{number:07x}", by=Principal("operator", "admin"))
    job = coordinator.queue.claim_next("build1", by=agent)
    assert job is not None

    result = store.checkpoint()

    if store.engine.dialect.name != "sqlite":
        assert result is None
        return
    assert result is not None
    pages, copied = result
    assert pages > 0
    assert copied == pages  # no reader held any of them back
    with store.engine.connect() as conn:
        autocheckpoint = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert autocheckpoint == engine_module.SQLITE_AUTOCHECKPOINT_PAGES
    # The checkpointed database still answers as before.
    assert coordinator.queue.get(job.id, by=agent).status == "running"


def test_the_maintenance_loop_checkpoints_after_each_pass_and_survives_a_failure(
    store: Store, coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    calls: list[int] = []

    def checkpoint() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("PRAGMA wal_checkpoint", None, Exception("disk I/O error"))
        if len(calls) >= 3:
            stop.set()

    monkeypatch.setattr(store, "checkpoint", checkpoint)
    maintenance.run_until(coordinator, stop, 0.01)

    assert len(calls) == 3
