"""The prebuilt statements the store's driver lane runs, as its SQL log shows them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from buildcoord.store.engine import DRIVER_LOG_FORMAT


@contextmanager
def logged_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Turn the engine's SQL logging on; collect each (statement, parameters) the driver logs."""
    captured: list[tuple[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg == DRIVER_LOG_FORMAT and isinstance(record.args, tuple):
                statement, parameters = record.args
                captured.append((str(statement), tuple(parameters)))

    logger = engine.logger if isinstance(engine.logger, logging.Logger) else None
    assert logger is not None, "an engine made with echo= logs through its own logger"
    handler = Collect()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@contextmanager
def executed_statements(engine: Engine) -> Iterator[list[str]]:
    """Collect the text of every statement sent to the database, through either lane.

    SQLAlchemy Core's statements (and the BEGIN IMMEDIATE its SQLite transactions send) are
    seen as cursor executions; the driver lane's prebuilt ones through its SQL log. A commit
    or rollback is no statement here (the DBAPI ends the transaction).
    """
    texts: list[str] = []

    def core(
        _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        texts.append(statement)

    event.listen(engine, "before_cursor_execute", core)
    try:
        with logged_statements(engine) as prebuilt:
            yield texts
        texts.extend(statement for statement, _ in prebuilt)
    finally:
        event.remove(engine, "before_cursor_execute", core)
