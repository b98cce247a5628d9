"""A small fleet with one of everything, so requests naming an id hit a real object.

Three servers (build1, build2, build3) each have: a finished successful build with a manifest
(so an artifact set, a rollback entry with its tag and a tag order exist, and the three
builds of one commit give comparisons), a running job with its lease, a message addressed to
them that asks for an acknowledgement, and a lock they hold. Beside those: branch ``main``
(its repository does not exist: reading its tip fails quietly), two queued jobs, a cancelled
job, and tokens: a read token, a revoked one and a spare operator token to revoke.

The world is built once per backend and session through the API, then its rows are copied
into each test's empty database (``restore``), which takes milliseconds where building it
takes a second. The authorisation matrix and the OpenAPI fuzzer use it; so does
bench/fuzz_api.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, func, select, text

from buildcoord.client import Client
from buildcoord.models import ArtifactFile
from buildcoord.store import Store
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.schema import metadata
from inprocess import Connect

Rows = dict[str, list[dict[str, Any]]]

SERVERS = ("build1", "build2", "build3")
BRANCH = "main"
COMMIT = "abc1234"
MANIFEST = [
    ArtifactFile(
        path="app.jar",
        size=3,
        sha256="ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    )
]


@dataclass(frozen=True)
class Seat:
    """One server's agent token and the objects that belong to it."""

    name: str
    token: str
    running_job: int
    fencing_token: int
    built_job: int
    tag: str
    order: int
    message: int
    lock: str
    lock_token: int


@dataclass(frozen=True)
class World:
    """Everything seed_world made."""

    seats: dict[str, Seat]
    queued_jobs: tuple[int, ...]
    cancelled_job: int
    comparison: int
    read_token: str
    revoked_token: str
    spare_token_id: int


def seed_world(operator: Client, connect: Callable[[str | None], Client], scratch: Path) -> World:
    """Build the fleet through the API as its operator and its agents would."""
    operator.add_branch(BRANCH, repo=str(scratch / "no-such-repository"), command="true")
    tokens: dict[str, str] = {}
    built: dict[str, int] = {}
    for name in SERVERS:
        _server, tokens[name] = operator.register_server(name)
        agent = connect(tokens[name])
        submitted = operator.submit_job(BRANCH, COMMIT)
        job = agent.claim_job(name)
        assert job is not None
        assert job.id == submitted.id
        agent.complete_job(
            job.id,
            status="succeeded",
            exit_code=0,
            duration=1.0,
            server=name,
            fencing_token=job.fencing_token,
            manifest=MANIFEST,
            artifact_root=f"/srv/artifacts/{name}",
        )
        built[name] = job.id
    seats: dict[str, Seat] = {}
    goods = {good.job_id: good for good in operator.good_builds(BRANCH)}
    for name in SERVERS:
        agent = connect(tokens[name])
        submitted = operator.submit_job(BRANCH, COMMIT)
        running = agent.claim_job(name)
        assert running is not None
        assert running.id == submitted.id
        message = operator.send_message(
            sender="coordinator",
            recipient=name,
            type="request",
            subject=f"hello {name}",
            body="",
            ack_required=True,
        )
        grant = agent.acquire_lock(f"lock-{name}", name)
        tag = goods[built[name]].tag
        assert tag is not None
        seats[name] = Seat(
            name=name,
            token=tokens[name],
            running_job=running.id,
            fencing_token=running.fencing_token,
            built_job=built[name],
            tag=tag,
            order=operator.pending_orders(name)[0].id,
            message=message.id,
            lock=grant.name,
            lock_token=grant.token,
        )
    queued = (operator.submit_job(BRANCH, COMMIT).id, operator.submit_job(BRANCH, COMMIT).id)
    cancelled = operator.submit_job(BRANCH, COMMIT)
    operator.cancel_job(cancelled.id, reason="seeded")
    revoked = operator.create_token("revoked")
    operator.revoke_token(revoked.token.id)
    comparisons = operator.comparisons()
    assert comparisons
    return World(
        seats=seats,
        queued_jobs=queued,
        cancelled_job=cancelled.id,
        comparison=comparisons[0].id,
        read_token=operator.create_token("dashboard", kind="read").secret,
        revoked_token=revoked.secret,
        spare_token_id=operator.create_token("spare").token.id,
    )


# --- a copy per test ---------------------------------------------------------------------------


def dump(store: Store) -> Rows:
    """Every row of every table, by table."""
    with read_transaction(store.engine) as conn:
        return {
            table.name: [dict(row._mapping) for row in conn.execute(select(table))]
            for table in metadata.sorted_tables
        }


def restore(store: Store, rows: Rows) -> None:
    """Make the database hold exactly rows (and let new ids follow the largest one)."""
    with write_transaction(store.engine) as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        for table in metadata.sorted_tables:
            if rows[table.name]:
                conn.execute(table.insert(), rows[table.name])
        if conn.dialect.name != "postgresql":
            return  # SQLite's next rowid follows the largest one by itself
        for table in metadata.sorted_tables:
            keys = list(table.primary_key.columns)
            if len(keys) != 1 or not isinstance(keys[0].type, Integer):
                continue
            largest = conn.execute(select(func.max(keys[0]))).scalar()
            if largest is not None:
                conn.execute(
                    text("SELECT setval(pg_get_serial_sequence(:table, :column), :value)"),
                    {"table": table.name, "column": keys[0].name, "value": largest},
                )


_BUILT: dict[str, tuple[Rows, World]] = {}


@pytest.fixture
def world(store: Store, operator: Client, connect: Connect, tmp_path: Path) -> World:
    """The seeded fleet in this test's database (built once per backend and session)."""
    dialect = store.engine.dialect.name
    if dialect not in _BUILT:
        built = seed_world(operator, connect, tmp_path)
        _BUILT[dialect] = (dump(store), built)
        return built
    rows, built = _BUILT[dialect]
    restore(store, rows)
    return built


Restore = Callable[[], None]


@pytest.fixture
def reseed(store: Store, world: World) -> Restore:
    """Put the seeded fleet back after a request changed it."""
    rows, _built = _BUILT[store.engine.dialect.name]
    return lambda: restore(store, rows)
