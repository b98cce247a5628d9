"""Engines and transactions: URL handling, SQLite pragmas, and the write/read transaction split."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from buildcoord.errors import InvalidInput


def default_home() -> Path:
    """Return ``$BUILDCOORD_HOME`` or ``~/.local/share/buildcoord``."""
    home = os.environ.get("BUILDCOORD_HOME")
    return Path(home) if home else Path.home() / ".local" / "share" / "buildcoord"


def default_url() -> str:
    """Return the embedded SQLite URL used when no database is named."""
    return f"sqlite:///{default_home() / 'buildcoord.db'}"


def normalize_url(url: str) -> str:
    """Turn a URL as users write it into one SQLAlchemy can drive (psycopg 3 for PostgreSQL)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse text
        raise InvalidInput(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        if parsed.drivername != "sqlite":
            raise InvalidInput(f"use a plain sqlite:///PATH URL, not {parsed.drivername}")
        return url
    raise InvalidInput(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://...")


def is_sqlite(engine: Engine) -> bool:
    """Tell whether the engine drives SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite: WAL, busy timeout, and BEGIN IMMEDIATE for writes."""
    real = normalize_url(url)
    parsed = make_url(real)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            real,
            poolclass=NullPool if database in ("", ":memory:") else None,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(real, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes the write lock up front: no deadlock-prone upgrade from a read lock.
        if connection.get_execution_options().get("write", False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Run one write transaction (BEGIN IMMEDIATE on SQLite); commit on success."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """Run one read-only transaction."""
    with engine.connect() as conn, conn.begin():
        yield conn
