"""Engines and transactions: URL handling, SQLite pragmas, and the write/read transaction split.

Two kinds of table, one way each: the job tables (jobs, job_dependencies, events) run the
prebuilt statements of job_queries on the driver's own cursor (``Driver``); every other table
goes through SQLAlchemy Core (``write_transaction``/``read_transaction``).
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InvalidRequestError,
    OperationalError,
    StatementError,
)
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

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
    # At most 30 connections per process, as before, but 20 of them kept: with 10 kept, a
    # loaded coordinator opened and closed a connection for most requests beyond the tenth at
    # once (2.5 % of its CPU in connecting, bench/fleet.py with 1,000 idle agents).
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(real, **kwargs)
    event.listen(engine, "checkout", _replace_if_closed_by_server)
    return engine


def _replace_if_closed_by_server(
    dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    """Hand out no pooled PostgreSQL connection the server has closed (a restart, a kill).

    Instead of pool_pre_ping's round trip on every checkout: an idle connection has nothing
    to read, so a readable socket means the server sent its goodbye (or hung up). Raising
    DisconnectionError makes the pool replace the connection and check out a fresh one.
    A connection lost without a word (a network cut) still fails its next statement, which
    discards it, and the request after that one gets a fresh connection.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the pooled connection is closed")
    try:
        fd = dbapi_connection.pgconn.socket
    except Exception as exc:  # psycopg raises OperationalError for a connection gone bad
        raise DisconnectionError(f"the pooled connection is unusable: {exc}") from exc
    if _readable(fd):
        raise DisconnectionError("the server closed the pooled connection")


CHECKOUT_TRIES = 3
"""How many times a checkout is asked for when the pool gave up on connections the server
closed (the pool itself tries twice each time)."""

_T = TypeVar("_T")


def checked_out(open_connection: Callable[[], _T]) -> _T:
    """A pooled connection from ``open_connection``, asked for again when the pool ran out of
    tries on connections the server had closed (a storm of ``pg_terminate_backend``, a restart:
    SQLAlchemy then raises InvalidRequestError "This connection is closed"). A database that
    keeps closing them is unavailable, as a lost one is (OperationalError: 503), not a bug."""
    for _ in range(CHECKOUT_TRIES - 1):
        try:
            return open_connection()
        except InvalidRequestError as exc:
            if "connection is closed" not in str(exc):
                raise
    try:
        return open_connection()
    except InvalidRequestError as exc:
        if "connection is closed" not in str(exc):
            raise
        gone = ConnectionError("the database closed every connection the pool tried")
        raise OperationalError("checkout", None, gone) from exc


def _readable(fd: int) -> bool:
    """Whether fd has data (or end-of-file) to read right now, without waiting."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


SQLITE_AUTOCHECKPOINT_PAGES = 4_000
"""WAL pages (4 KiB each: a WAL of up to about 16 MiB) after which a commit checkpoints.

Measured here (docs/benchmarks.md): 1,000 (SQLite's default) 3,170-3,530 store claims/s,
4,000 3,630-3,940/s, 10,000 3,670-4,020/s; but the commit that runs the checkpoint stalled
for at most 4-10 ms, 12-16 ms and 30-74 ms respectively. 4,000 takes most of the gain.
"""


def checkpoint_wal(engine: Engine) -> tuple[int, int] | None:
    """Copy committed WAL pages into an SQLite database file without waiting for anyone.

    A PASSIVE checkpoint: it skips what readers still need and never blocks a writer, so the
    maintenance loop can run it while requests write. Returns (WAL pages, pages checkpointed),
    or None when there is nothing to do (PostgreSQL, an in-memory database, or the WAL busy).
    """
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return None
    pooled = engine.raw_connection()
    try:
        raw = pooled.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:  # the connection is in autocommit mode (isolation_level None): no transaction
            busy, pages, done = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            cursor.close()
    finally:
        pooled.close()
    return None if busy else (int(pages), int(done))


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
        # Checkpoint the WAL every SQLITE_AUTOCHECKPOINT_PAGES pages instead of every 1,000:
        # each checkpoint stalls the commit that runs it (two fsyncs), and fewer, larger ones
        # write each hot index page once instead of many times. serve's maintenance loop also
        # checkpoints every second (checkpoint_wal), off the request path.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
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
    """Run one write transaction (BEGIN IMMEDIATE on SQLite); commit on success.

    Callbacks registered with ``after_commit`` run once the commit is done.
    """
    with checked_out(engine.connect).execution_options(write=True) as conn:
        try:
            with conn.begin():
                yield conn
            callbacks = conn.info.pop(_AFTER_COMMIT, ())
        except BaseException:
            conn.info.pop(_AFTER_COMMIT, None)
            raise
    for callback in callbacks:
        callback()


_AFTER_COMMIT = "buildcoord.after_commit"


class CommitListeners:
    """Callbacks run after this process commits a transaction that may have appended events.

    They wake the change feed (services/feed.py) at once, rather than at its next look. A
    callback must be quick and must not raise (it runs on the committing thread).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: tuple[Callable[[], None], ...] = ()

    def add(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run callback after each such commit; return what stops it."""
        with self._lock:
            self._callbacks = (*self._callbacks, callback)

        def remove() -> None:
            with self._lock:
                kept = list(self._callbacks)
                if callback in kept:
                    kept.remove(callback)
                self._callbacks = tuple(kept)

        return remove

    def fire(self) -> None:
        """Call every callback (after a commit)."""
        for callback in self._callbacks:
            callback()


event_commits = CommitListeners()
"""Commits in this process that may have appended events: every driver write transaction (the
job tables, events, orders) and every Core write transaction that appended an event."""


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Call ``callback`` once when the write_transaction conn runs commits (never if it rolls
    back), however often it is registered."""
    callbacks = conn.info.setdefault(_AFTER_COMMIT, [])
    if callback not in callbacks:
        callbacks.append(callback)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """Run one read-only transaction."""
    with checked_out(engine.connect) as conn, conn.begin():
        yield conn


# -- prebuilt SQL straight on the driver ---------------------------------------------------------
#
# The job tables (store/job_queries.py) send prebuilt SQL text to the DBAPI cursor: per
# statement, SQLAlchemy's execution machinery cost several times what SQLite takes to run it.
# Each transaction is still one pooled connection, one BEGIN and one COMMIT, and errors still
# surface as SQLAlchemy's exceptions (so a dead database still answers 503). When SQLAlchemy's
# SQL logging is on (``echo``, or the ``sqlalchemy.engine`` logger at INFO), the driver logs
# each statement and its parameters to the same logger.


@dataclass(frozen=True, slots=True)
class Sql:
    """One prebuilt statement in each driver's placeholder style: ``?`` sqlite3, ``%s`` psycopg."""

    sqlite: str
    postgresql: str


def sql(statement: str, *, postgresql: str | None = None) -> Sql:
    """Write a statement once with ``?`` placeholders (and optionally a PostgreSQL variant).

    An empty ``statement`` makes a PostgreSQL-only statement that refuses to run on SQLite.
    """
    pg = statement if postgresql is None else postgresql
    if "%" in statement or "%" in pg:
        raise ValueError("prebuilt SQL must not contain '%': psycopg reads it as a placeholder")
    return Sql(statement, pg.replace("?", "%s"))


class Rows(Protocol):
    """What a statement gives back: the DBAPI cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


DRIVER_LOG_FORMAT = "%s\n[prebuilt] %r"
"""How the driver logs a statement: its text, then its parameters (``record.args``)."""


class Driver:
    """Runs prebuilt statements on one DBAPI cursor, inside a transaction someone else owns.

    ``driver_transaction``/``driver_read`` open the transaction on a pooled connection of its
    own; ``Driver.within(conn)`` joins the transaction of an SQLAlchemy write_transaction (the
    same DBAPI connection), for work that also writes tables kept on SQLAlchemy Core.
    """

    __slots__ = ("_conn", "_cursor", "_engine", "_log", "postgresql")

    def __init__(self, engine: Engine, cursor: DBAPICursor, conn: Connection | None) -> None:
        self._engine = engine
        self._cursor = cursor
        self._conn = conn
        self.postgresql = engine.dialect.name != "sqlite"
        logger = engine.logger
        self._log = logger if logger.isEnabledFor(logging.INFO) else None

    @classmethod
    def within(cls, conn: Connection) -> Driver:
        """Run statements on the DBAPI connection under an open SQLAlchemy transaction."""
        raw = conn.connection.dbapi_connection
        assert raw is not None  # a connection inside its transaction
        return cls(conn.engine, raw.cursor(), conn)

    @property
    def connection(self) -> Connection | None:
        """The SQLAlchemy connection whose transaction this joined, if any."""
        return self._conn

    def run(self, statement: Sql, params: Sequence[Any] = ()) -> Rows:
        """Execute one statement; fetch its rows from the result before the next run."""
        text = statement.postgresql if self.postgresql else statement.sqlite
        if not text:
            raise RuntimeError(f"a PostgreSQL-only statement run on SQLite: {statement}")
        if self._log is not None:
            self._log.info(DRIVER_LOG_FORMAT, text, self._shown(params))
        cursor = self._cursor
        try:
            cursor.execute(text, params)
        except self._engine.dialect.loaded_dbapi.Error as error:
            lost = _lost(self._engine, error, cursor)
            raise _wrapped(self._engine, error, text, params, lost=lost) from error
        return cast(Rows, cursor)  # sqlite3 and psycopg cursors iterate over their rows

    def run_many(self, statement: Sql, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement once per parameter row (``executemany``)."""
        if not rows:
            return
        text = statement.postgresql if self.postgresql else statement.sqlite
        if self._log is not None:
            self._log.info(DRIVER_LOG_FORMAT, text, self._shown(rows))
        cursor = self._cursor
        try:
            cursor.executemany(text, rows)
        except self._engine.dialect.loaded_dbapi.Error as error:
            lost = _lost(self._engine, error, cursor)
            raise _wrapped(self._engine, error, text, rows, lost=lost) from error

    def _shown(self, params: Any) -> Any:
        """The parameters as the log shows them (hidden when the engine hides them)."""
        return "(parameters hidden)" if self._engine.hide_parameters else params


def _lost(engine: Engine, error: Any, cursor: DBAPICursor) -> bool:
    """Whether the driver error means the connection itself is gone."""
    return bool(engine.dialect.is_disconnect(error, cursor.connection, cursor))


def _wrapped(
    engine: Engine, error: Exception, statement: str | None, params: Any, *, lost: bool = False
) -> StatementError:
    """The SQLAlchemy exception SQLAlchemy itself would raise for a driver error."""
    return DBAPIError.instance(
        statement,
        params,
        error,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=lost,
        dialect=engine.dialect,
    )


@contextmanager
def driver_transaction(engine: Engine, *, appends_events: bool = True) -> Iterator[Driver]:
    """Run one write transaction of prebuilt statements (BEGIN IMMEDIATE on SQLite).

    It commits on success and rolls back on any exception. Driver errors are raised as
    SQLAlchemy's exceptions; a connection the driver reports lost is discarded, not pooled.
    The commit wakes the change feed (``event_commits``) unless the caller says that the
    transaction appends no event (``appends_events=False``: a heartbeat).
    """
    with _driver(engine, write=True, announce=appends_events) as driver:
        yield driver


@contextmanager
def driver_read(engine: Engine) -> Iterator[Driver]:
    """Run prebuilt reads on one pooled connection (no write lock; ended by a rollback)."""
    with _driver(engine, write=False) as driver:
        yield driver


@contextmanager
def _driver(engine: Engine, *, write: bool, announce: bool = True) -> Iterator[Driver]:
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        pooled = checked_out(engine.raw_connection)
    except dbapi_error as error:
        raise _wrapped(engine, error, None, None) from error
    try:
        raw = pooled.dbapi_connection
        assert raw is not None  # a connection just checked out of the pool
        cursor = raw.cursor()
        driver = Driver(engine, cursor, None)
        try:
            if write and engine.dialect.name == "sqlite":  # psycopg sends BEGIN by itself
                driver.run(_BEGIN_IMMEDIATE)
            yield driver
            try:
                if write:
                    raw.commit()
                else:
                    raw.rollback()
            except dbapi_error as error:
                lost = _lost(engine, error, cursor)
                raise _wrapped(engine, error, "COMMIT", None, lost=lost) from error
            if write and announce:
                event_commits.fire()
        except BaseException as failure:
            lost = isinstance(failure, DBAPIError) and failure.connection_invalidated
            if not lost:
                try:
                    raw.rollback()
                except dbapi_error:
                    lost = True
            if lost:  # never pool a connection that is gone or stuck in a transaction
                pooled.invalidate()
            raise
        finally:
            cursor.close()
    finally:
        pooled.close()


_BEGIN_IMMEDIATE = sql("BEGIN IMMEDIATE")
