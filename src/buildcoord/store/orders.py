"""Orders: work the coordinator asks of one agent beside builds (cleanup, git tags).

Its statements are prebuilt SQL on the driver's cursor, like the job tables' (job_queries):
every successful build of a set-up branch orders its tag (through SQLAlchemy Core a write
transaction cost about 480 µs against 80 µs on the driver, a read 130 µs against 15 µs:
SQLite, in process). Creating an order appends ``order.created``, which the change feed tells
the agent's live session. One style for the whole table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import AgentOrder
from buildcoord.store.engine import driver_read, driver_transaction, sql
from buildcoord.store.events import record_event
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

_COLUMNS = "id, server, kind, params, status, created_at, finished_at, result, error"
"""An order's columns, in the order order_from_row reads them."""

# A new order, pending. Parameters: server, kind, params (JSON), created_at.
CREATE = sql(
    "INSERT INTO agent_orders (server, kind, params, status, created_at)"
    f" VALUES (?, ?, ?, 'pending', ?) RETURNING {_COLUMNS}"
)

# One order by id.
GET = sql(f"SELECT {_COLUMNS} FROM agent_orders WHERE id = ?")

# Orders oldest first, by (of a server, in a status). Parameters: [server,] [status,] limit.
LIST = {
    (by_server, by_status): sql(
        f"SELECT {_COLUMNS} FROM agent_orders"
        + (" WHERE " if by_server or by_status else "")
        + " AND ".join(
            condition
            for condition, wanted in (("server = ?", by_server), ("status = ?", by_status))
            if wanted
        )
        + " ORDER BY id LIMIT ?"
    )
    for by_server in (False, True)
    for by_status in (False, True)
}

# Whether a server has a pending order.
HAS_PENDING = sql("SELECT id FROM agent_orders WHERE server = ? AND status = 'pending' LIMIT 1")

# An agent's report on an order. Parameters: status, finished_at, result (JSON),
# error, id.
FINISH = sql(
    "UPDATE agent_orders SET status = ?, finished_at = ?, result = ?, error = ?"
    f" WHERE id = ? RETURNING {_COLUMNS}"
)


def order_from_row(row: Sequence[Any]) -> AgentOrder:
    """Build an AgentOrder from a row of agent_orders (its columns in table order)."""
    order_id, server, kind, params, status, created_at, finished_at, result, error = row
    return AgentOrder(
        id=order_id,
        server=server,
        kind=kind,
        params=json.loads(params),
        status=status,
        created_at=from_epoch(created_at),
        finished_at=from_epoch_or_none(finished_at),
        result=None if result is None else json.loads(result),
        error=error,
    )


class OrderStore:
    """SQL for agent orders."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, server: str, kind: str, params: dict[str, Any], *, now: float, actor: str
    ) -> AgentOrder:
        """Queue an order for one agent."""
        with driver_transaction(self.engine) as db:
            text = json.dumps(params, sort_keys=True)
            order = order_from_row(db.run(CREATE, (server, kind, text, now)).fetchone())
            record_event(
                db,
                at=now,
                actor=actor,
                kind="order.created",
                subject=f"server:{server}",
                after={"order": order.id, "kind": kind},
            )
        return order

    def get(self, order_id: int) -> AgentOrder:
        """One order, or NotFound."""
        with driver_read(self.engine) as db:
            row = db.run(GET, (order_id,)).fetchone()
        if row is None:
            raise NotFound(f"order {order_id} does not exist")
        return order_from_row(row)

    def list_orders(
        self, *, server: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[AgentOrder]:
        """Orders, oldest first (the order agents carry them out in)."""
        statement = LIST[(server is not None, status is not None)]
        params = [value for value in (server, status) if value is not None]
        with driver_read(self.engine) as db:
            rows = db.run(statement, (*params, limit)).fetchall()
        return [order_from_row(row) for row in rows]

    def has_pending(self, server: str) -> bool:
        """Whether the agent has orders to carry out (asked once when its session opens)."""
        with driver_read(self.engine) as db:
            return db.run(HAS_PENDING, (server,)).fetchone() is not None

    def finish(
        self,
        order_id: int,
        *,
        server: str,
        status: str,
        result: dict[str, Any] | None,
        error: str | None,
        now: float,
        actor: str,
    ) -> AgentOrder:
        """Record an agent's report; only the addressed agent, only once."""
        with driver_transaction(self.engine) as db:
            row = db.run(GET, (order_id,)).fetchone()
            current = None if row is None else order_from_row(row)
            if current is None or current.server != server:
                raise NotFound(f"order {order_id} does not exist for server {server}")
            if current.status != "pending":
                raise Conflict(f"order {order_id} is already {current.status}")
            report = None if result is None else json.dumps(result, sort_keys=True)
            done = db.run(FINISH, (status, now, report, error, order_id)).fetchone()
            record_event(
                db,
                at=now,
                actor=actor,
                kind=f"order.{status}",
                subject=f"server:{server}",
                after={"order": order_id, "kind": current.kind, "error": error},
            )
            return order_from_row(done)
