"""db backup (SQLite's online backup API) and db copy (every row into an empty database), on
real databases filled through the services with the seed sample and some work of our own."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, InvalidInput
from buildcoord.legacy.layout import collect
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from buildcoord.store.copying import backup_sqlite, copy_database
from buildcoord.store.schema import metadata

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "legacy-state"
OPERATOR = Principal("operator", "admin")


def _fill(url: str) -> None:
    store = Store.open(url)
    try:
        coordinator = Coordinator(store, Settings(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
        coordinator.legacy.import_files(collect(SAMPLE), dry_run=False, by=OPERATOR)
        coordinator.servers.register("build9", ["linux"], by=OPERATOR)
        first = coordinator.queue.submit("main", "abcdef1", by=OPERATOR)
        coordinator.queue.submit("main", "abcdef2", depends_on=[first.id], by=OPERATOR)
        coordinator.messages.send(
            sender="build9", recipient="all", type="info", subject="hi", body="é", by=OPERATOR
        )
    finally:
        store.close()


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    store = Store.open(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            return {
                table.name: sorted(tuple(row) for row in conn.execute(select(table)).fetchall())
                for table in metadata.sorted_tables
            }
    finally:
        store.close()


def test_a_backup_holds_every_row_and_passes_its_integrity_check(
    sqlite_url: str, tmp_path: Path
) -> None:
    _fill(sqlite_url)
    target = tmp_path / "backups" / "copy.db"
    seen: list[tuple[int, int]] = []
    store = Store.open(sqlite_url)
    try:
        size = backup_sqlite(
            store.engine, target, lambda _what, done, total: seen.append((done, total))
        )
    finally:
        store.close()
    assert size == target.stat().st_size
    assert seen
    assert seen[-1][0] == seen[-1][1]
    assert sqlite3.connect(target).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert _rows(f"sqlite:///{target}") == _rows(sqlite_url)
    assert not list(target.parent.glob(".*partial"))


def test_a_backup_never_overwrites_and_is_for_sqlite_only(
    sqlite_url: str, postgres_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "there.db"
    target.write_text("keep me")
    store = Store.open(sqlite_url)
    try:
        with pytest.raises(Conflict, match="never overwrites"):
            backup_sqlite(store.engine, target)
    finally:
        store.close()
    assert target.read_text() == "keep me"
    other = Store.open(postgres_url)
    try:
        with pytest.raises(InvalidInput, match="pg_dump"):
            backup_sqlite(other.engine, tmp_path / "new.db")
    finally:
        other.close()


def test_a_copy_from_sqlite_to_postgresql_holds_every_row_and_goes_on_counting_ids(
    sqlite_url: str, postgres_url: str
) -> None:
    _fill(sqlite_url)
    copied = copy_database(sqlite_url, postgres_url)
    source = _rows(sqlite_url)
    assert _rows(postgres_url) == source
    assert copied == {name: len(rows) for name, rows in source.items()}
    # New rows on the copy get ids past the copied ones.
    store = Store.open(postgres_url)
    try:
        coordinator = Coordinator(store, Settings(), FakeClock())
        job = coordinator.queue.submit("main", "abcdef3", by=OPERATOR)
        assert job.id == max(row[0] for row in source["jobs"]) + 1
    finally:
        store.close()


def test_a_copy_into_a_database_that_holds_rows_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    _fill(sqlite_url)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    _fill(other)
    before = _rows(other)
    with pytest.raises(Conflict, match="already holds rows"):
        copy_database(sqlite_url, other)
    assert _rows(other) == before


def test_a_backup_finishes_while_another_connection_writes_all_the_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    _fill(sqlite_url)
    store = Store.open(sqlite_url)
    stop = threading.Event()
    written = []

    def write() -> None:
        coordinator = Coordinator(store, Settings(), FakeClock())
        for index in range(100_000):  # bounded; stopped long before
            if stop.is_set():
                return
            coordinator.messages.send(
                sender="build9",
                recipient="all",
                type="info",
                subject=f"{index}",
                body="x",
                by=OPERATOR,
            )
            written.append(index)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(written) < 20:
            time.sleep(0.01)
        backup_sqlite(store.engine, tmp_path / "busy.db")
    finally:
        stop.set()
        writer.join(timeout=30)
        store.close()
    copy = sqlite3.connect(tmp_path / "busy.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT count(*) FROM messages").fetchone()[0] >= 20
