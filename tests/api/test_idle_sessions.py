"""Idle agent sessions cost the database nothing per connection: one change feed reads for all.

Counts every statement the store runs (the driver lane's SQL log and SQLAlchemy's own
statements) while N agents hold their live sessions open and do nothing else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from buildcoord.store import Store
from buildcoord.web.routes.agents import KEEPALIVE_SECONDS
from inprocess import RegisterAgent
from sql_log import logged_statements

pytestmark = pytest.mark.timeout(60)

WINDOW = 2.0  # seconds of idleness measured


@contextmanager
def counted_statements(store: Store) -> Iterator[list[str]]:
    """Collect the text of every statement the store sends, on either lane."""
    core: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        core.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        with logged_statements(store.engine) as driver:
            collected: list[str] = []
            yield collected
            collected.extend(core)
            collected.extend(statement for statement, _ in driver)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


class IdleSessions:
    """N agents holding their sessions open from threads, doing nothing else."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hellos = 0
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def open(self, agent_client: Any, name: str) -> None:
        def hold() -> None:
            for kind, _data in agent_client.session_events(name):
                if kind == "hello":
                    with self._lock:
                        self.hellos += 1
                if self.stop.is_set():
                    return

        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        self.threads.append(thread)

    def wait_open(self, count: int) -> None:
        end = time.monotonic() + 20
        while self.hellos < count:
            assert time.monotonic() < end, f"{self.hellos} of {count} sessions opened"
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(KEEPALIVE_SECONDS + 2)


def statements_while_idle(store: Store, sessions: int, register_agent: RegisterAgent) -> int:
    held = IdleSessions()
    try:
        for index in range(sessions):
            agent = register_agent(f"idle{sessions}-{index}")
            held.open(agent.client, agent.name)
        held.wait_open(sessions)
        time.sleep(0.3)  # what opening reads (labels, cancels, orders) is done
        with counted_statements(store) as statements:
            time.sleep(WINDOW)
        return len(statements)
    finally:
        held.close()


def test_idle_sessions_run_no_statement_per_connection(
    store: Store, register_agent: RegisterAgent
) -> None:
    one = statements_while_idle(store, 1, register_agent)
    twenty = statements_while_idle(store, 20, register_agent)

    # The feed looks at the event log about ten times a second, for all sessions together;
    # a per-connection read once a second would add 20 x WINDOW = 40 statements.
    assert one <= 15 * WINDOW
    assert twenty <= one + 10, (one, twenty)
