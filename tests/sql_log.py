"""The prebuilt statements the store's driver lane runs, as its SQL log shows them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

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
