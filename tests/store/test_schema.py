"""The schema: migrations give exactly the declared tables, and the claim stays on its index."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.queue import claim_rank
from buildcoord.store import Store
from buildcoord.store.engine import make_engine, write_transaction
from buildcoord.store.migrate import alembic_config, current_revision, upgrade
from buildcoord.store.schema import build_history, job_dependencies, jobs, metadata
from sql_log import logged_statements

CLAIM_INDEX = "ix_jobs_claim_order"
LABELLED = 40
# The claim's candidate read: a SELECT from jobs in (rank, id) order.
CLAIM_ORDER = re.compile(r"^\s*SELECT\b.*\bFROM jobs\b.*\bORDER BY (jobs\.)?rank\b", re.I | re.S)


def _normalized(predicate: object) -> str:
    """A partial-index predicate without casts, parentheses and spacing, for comparison."""
    text = re.sub(r"::\w+", "", str(predicate))
    return re.sub(r"[()\s]", "", text).lower()


# -- migrations -----------------------------------------------------------------------------------


def test_migrating_an_empty_database_gives_exactly_the_declared_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()

    assert differences == []


def test_migrating_gives_the_partial_indexes_of_the_declared_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        dialect = engine.dialect.name
        inspector = inspect(engine)
        reflected = {
            (table, index["name"]): _normalized(index["dialect_options"][f"{dialect}_where"])
            for table in inspector.get_table_names()
            for index in inspector.get_indexes(table)
            if index.get("dialect_options", {}).get(f"{dialect}_where") is not None
        }
    finally:
        engine.dispose()
    declared = {
        (table.name, index.name): _normalized(index.dialect_options[dialect]["where"])
        for table in metadata.sorted_tables
        for index in table.indexes
        if index.dialect_options[dialect]["where"] is not None
    }

    assert reflected == declared
    assert reflected[("jobs", CLAIM_INDEX)] == "status='queued'andpending_deps=0"


def test_migrating_twice_is_harmless_and_records_the_head_revision(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        upgrade(engine)
        assert current_revision(engine) is not None
        assert set(inspect(engine).get_table_names()) == {*metadata.tables, "alembic_version"}
    finally:
        engine.dispose()


def test_downgrading_the_trigger_migration_keeps_every_job_and_its_build_history(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with write_transaction(engine) as conn:
            for job_id in (1, 2):
                conn.execute(
                    insert(jobs).values(
                        id=job_id,
                        branch="main",
                        commit=f"{job_id:040x}",
                        priority=5,
                        status="succeeded",
                        attempt=1,
                        max_attempts=3,
                        labels="",
                        depends_on="1" if job_id == 2 else "",
                        pending_deps=0,
                        rank=float(job_id),
                        fencing_token=1,
                        created_at=1.0,
                        queued_at=1.0,
                        started_at=2.0,
                        finished_at=12.0,
                        duration=10.0,
                        trigger="push",
                    )
                )
            conn.execute(insert(job_dependencies).values(job_id=2, depends_on_id=1))
            conn.execute(
                insert(build_history).values(
                    job_id=1,
                    attempt=1,
                    branch="main",
                    build_key="k" * 64,
                    commit="1" * 40,
                    queued_at=1.0,
                    started_at=2.0,
                    finished_at=12.0,
                    duration=10.0,
                    queue_wait=1.0,
                    result="succeeded",
                    hour_of_day=0,
                    day_of_week=3,
                    trigger="push",
                )
            )

        command.downgrade(alembic_config(engine), "0005")

        assert current_revision(engine) == "0005"
        with engine.connect() as conn:
            counts = {
                table: conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                for table in ("jobs", "job_dependencies", "build_history")
            }
        assert counts == {"jobs": 2, "job_dependencies": 1, "build_history": 1}
        for table in ("jobs", "build_history"):
            assert "trigger" not in {
                column["name"] for column in inspect(engine).get_columns(table)
            }
    finally:
        engine.dispose()


def _server_rows(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM servers ORDER BY name").mappings().all()
    return {row["name"]: (row["labels"], row.get("reported_labels", "absent")) for row in rows}


def _add_server(engine: Engine, name: str, labels: str) -> None:
    with write_transaction(engine) as conn:
        conn.exec_driver_sql(
            "INSERT INTO servers (name, labels, registered_at, recorded_status)"
            f" VALUES ('{name}', '{labels}', 1.0, 'offline')"
        )


def test_upgrading_to_reported_labels_drops_server_labels_stored_before(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0006")
        _add_server(engine, "build1", "mvn,server=build1,server=build2")
        _add_server(engine, "build2", "")

        upgrade(engine, "0007")

        assert _server_rows(engine) == {"build1": ("mvn", ""), "build2": ("", "")}
    finally:
        engine.dispose()


def test_downgrading_reported_labels_keeps_every_label_a_server_matched(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0007")
        _add_server(engine, "build1", "os=debian")
        with write_transaction(engine) as conn:
            conn.exec_driver_sql("UPDATE servers SET reported_labels = 'mvn,os=debian'")

        command.downgrade(alembic_config(engine), "0006")

        assert _server_rows(engine) == {"build1": ("mvn,os=debian,server=build1", "absent")}
    finally:
        engine.dispose()


# -- the claim query plan -------------------------------------------------------------------------


def _fill_realistic_queue(store: Store, clock: FakeClock) -> None:
    """5,000 jobs: 4,400 finished, 100 running, 450 claimable and 50 waiting on dependencies."""
    rng = random.Random(7)
    aging = Settings().priority_aging_minutes * 60
    start = clock.now().timestamp()
    rows: list[dict[str, Any]] = []
    for number in range(5_000):
        queued_at = start + number * 5
        priority = rng.randint(1, 10)
        if number < 4_400:
            status, pending = rng.choice(["succeeded"] * 9 + ["failed"]), 0
        elif number < 4_500:
            status, pending = "running", 0
        elif number < 4_950:
            status, pending = "queued", 0
        else:
            status, pending = "queued", 1
        rows.append(
            {
                "branch": f"feature/{number % 40}",
                "commit": f"{number:040x}",
                "priority": priority,
                "status": status,
                "attempt": 1,
                "max_attempts": 3,
                "labels": "",
                "depends_on": "1" if pending else "",
                "pending_deps": pending,
                "rank": claim_rank(priority, queued_at, aging),
                "server": "build9" if status == "running" else None,
                "fencing_token": 1 if status != "queued" else 0,
                "created_at": queued_at,
                "queued_at": queued_at,
            }
        )
    # The first claimable jobs need a label, so that a plain server pages past them.
    claimable = [row for row in rows if row["status"] == "queued" and not row["pending_deps"]]
    for row in sorted(claimable, key=lambda row: row["rank"])[:LABELLED]:
        row["labels"] = "gpu"
    with write_transaction(store.engine) as conn:
        conn.execute(insert(jobs), rows)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    clock.advance(5 * 5_000 + 60)


@contextmanager
def _captured_claim_queries(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Collect the SELECTs that read claimable jobs in claim order (from the SQL log)."""
    with logged_statements(engine) as logged:
        captured: list[tuple[str, Any]] = []
        yield captured
    captured.extend(entry for entry in logged if CLAIM_ORDER.search(entry[0]))


def _plan(engine: Engine, statement: str, parameters: Any) -> str:
    """The query plan of one captured statement, as text."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            return "\n".join(str(row[-1]) for row in rows)
        rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
        return "\n".join(str(row[0]) for row in rows)


def test_the_claim_query_uses_the_claim_index_after_analyze(
    store: Store, clock: FakeClock, operator: Principal
) -> None:
    coordinator = Coordinator(store, Settings(), clock)
    coordinator.servers.register("build1", by=operator)
    _fill_realistic_queue(store, clock)

    with _captured_claim_queries(store.engine) as captured:
        job = coordinator.queue.claim_next("build1", by=operator)

    assert job is not None
    assert job.labels == ()
    # It paged past the labelled jobs, 16 at a time; SQLite pages twice, in the read that
    # finds a job to claim and again under the write lock.
    assert len(captured) == (6 if store.engine.dialect.name == "sqlite" else 3)
    for statement, parameters in captured:
        plan = _plan(store.engine, statement, parameters)
        assert CLAIM_INDEX in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # SQLite sorting instead of walking the index
        assert "Sort" not in plan, plan  # PostgreSQL sorting instead of walking the index


def test_upgrading_to_build_totals_counts_the_history_recorded_before(db_url: str) -> None:
    engine = make_engine(db_url)
    builds = [("succeeded", 20.0), ("succeeded", 400.0), ("failed", 5.0)]
    try:
        upgrade(engine, "0008")
        with write_transaction(engine) as conn:
            for job_id, (result, seconds) in enumerate(builds, start=1):
                conn.execute(
                    jobs.insert().values(
                        id=job_id,
                        branch="main",
                        commit="abc",
                        priority=5,
                        status=result,
                        attempt=1,
                        max_attempts=3,
                        labels="",
                        depends_on="",
                        pending_deps=0,
                        rank=5,
                        fencing_token=1,
                        created_at=0,
                        queued_at=0,
                    )
                )
                conn.execute(
                    build_history.insert().values(
                        job_id=job_id,
                        attempt=1,
                        branch="main",
                        build_key="k",
                        server="build1",
                        commit="abc",
                        queued_at=0,
                        started_at=0,
                        finished_at=seconds,
                        duration=seconds,
                        queue_wait=0,
                        result=result,
                        hour_of_day=0,
                        day_of_week=0,
                    )
                )

        upgrade(engine)

        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT result, count, duration_sum, le_30, le_600 FROM build_totals"
                " ORDER BY result"
            ).all()
        assert [tuple(row) for row in rows] == [
            ("failed", 1, 5.0, 1, 1),
            ("succeeded", 2, 420.0, 1, 2),
        ]
    finally:
        engine.dispose()
