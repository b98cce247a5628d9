"""Whole-database copies: an online backup of a SQLite database, and every row of one database
into another (SQLite to PostgreSQL, when a fleet outgrows one machine)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, func, insert, select, text

from buildcoord.errors import Conflict, InvalidInput
from buildcoord.store.engine import is_sqlite, make_engine
from buildcoord.store.migrate import current_revision, head_revision, upgrade
from buildcoord.store.schema import metadata

Progress = Callable[[str, int, int], None]
"""(what, done, total): called as a long copy goes on."""

BACKUP_PAGES = -1
"""Every page in one step: one read transaction, so the copy is the database as it was at
its start. In WAL mode (as buildcoord opens SQLite) a reader holds off no writer; a copy in
several steps would start over at every write another connection makes between two steps,
and a busy coordinator writes every second."""
COPY_BATCH = 5_000
"""Rows read and written per round trip of a copy."""


def backup_sqlite(engine: Engine, target: Path, progress: Progress | None = None) -> int:
    """Copy a live SQLite database to ``target`` (a new file) with SQLite's online backup API
    while the coordinator goes on writing (BACKUP_PAGES); returns its size in bytes."""
    if not is_sqlite(engine):
        raise InvalidInput(
            "db backup copies a SQLite database; for PostgreSQL use pg_dump "
            "(docs/deployment.md, 'Backup and restore')"
        )
    if target.exists():
        raise Conflict(f"{target} exists: give a new file (a backup never overwrites)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)

    def step(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress("pages", total - remaining, total)

    source = engine.raw_connection()
    try:
        copy = sqlite3.connect(partial)
        try:
            source.driver_connection.backup(copy, pages=BACKUP_PAGES, progress=step)  # type: ignore[union-attr]
            found = copy.execute("PRAGMA integrity_check").fetchone()
            if found is None or found[0] != "ok":
                raise Conflict(f"the backup failed its integrity check: {found}")
        finally:
            copy.close()
    finally:
        source.close()
    partial.replace(target)
    return target.stat().st_size


def copy_database(
    source_url: str, target_url: str, progress: Progress | None = None
) -> dict[str, int]:
    """Copy every row of every table from one database into another that holds no rows yet
    (its schema is brought up to date first); identity sequences are set past the copied ids.
    Returns the rows copied per table."""
    source = make_engine(source_url)
    target = make_engine(target_url)
    try:
        head = head_revision()
        if current_revision(source) != head:
            raise InvalidInput(
                f"the source's schema is at {current_revision(source) or 'nothing'}, not {head}:"
                " run 'buildcoord db upgrade --db SOURCE' first"
            )
        upgrade(target)
        tables = metadata.sorted_tables  # parents before the rows that refer to them
        with target.connect() as conn:
            full = [
                table.name
                for table in tables
                if conn.execute(select(func.count()).select_from(table)).scalar_one()
            ]
        if full:
            raise Conflict(
                f"the target already holds rows (in {', '.join(full[:5])}): copy into an empty "
                "database"
            )
        copied: dict[str, int] = {}
        with source.connect() as reading, target.begin() as writing:
            for table in tables:
                total = reading.execute(select(func.count()).select_from(table)).scalar_one()
                done = 0
                ordered = select(table).order_by(*table.primary_key.columns)
                rows = reading.execution_options(stream_results=True, yield_per=COPY_BATCH)
                for batch in rows.execute(ordered).partitions(COPY_BATCH):
                    writing.execute(insert(table), [dict(row._mapping) for row in batch])
                    done += len(batch)
                    if progress is not None:
                        progress(table.name, done, total)
                if progress is not None and total == 0:
                    progress(table.name, 0, 0)
                copied[table.name] = done
            if not is_sqlite(target):
                _restart_sequences(writing)
        return copied
    finally:
        source.dispose()
        target.dispose()


def _restart_sequences(conn: Connection) -> None:
    """Set each identity column's sequence past its table's largest id (PostgreSQL)."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is not True:
                continue
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'),"
                    f" COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1, false)"
                )
            )
