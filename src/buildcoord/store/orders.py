"""Orders: work the coordinator asks of one agent beside builds (cleanup, git tags)."""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import Engine, Row, select, update

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import AgentOrder, OrderKind
from buildcoord.store.engine import driver_transaction, read_transaction, sql, write_transaction
from buildcoord.store.events import append_event, record_event
from buildcoord.store.schema import agent_orders
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

_CREATE = sql(
    "INSERT INTO agent_orders (server, kind, params, status, created_at)"
    " VALUES (?, ?, ?, 'pending', ?) RETURNING id"
)


def order_from_row(row: Row[Any]) -> AgentOrder:
    """Build an AgentOrder from a row of agent_orders."""
    return AgentOrder(
        id=row.id,
        server=row.server,
        kind=row.kind,
        params=json.loads(row.params),
        status=row.status,
        created_at=from_epoch(row.created_at),
        finished_at=from_epoch_or_none(row.finished_at),
        result=None if row.result is None else json.loads(row.result),
        error=row.error,
    )


class OrderStore:
    """SQL for agent orders."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, server: str, kind: str, params: dict[str, Any], *, now: float, actor: str
    ) -> AgentOrder:
        """Queue an order for one agent (prebuilt: every successful build makes one)."""
        with driver_transaction(self.engine) as db:
            text = json.dumps(params, sort_keys=True)
            order_id = int(db.run(_CREATE, (server, kind, text, now)).fetchone()[0])
            record_event(
                db,
                at=now,
                actor=actor,
                kind="order.created",
                subject=f"server:{server}",
                after={"order": order_id, "kind": kind},
            )
        return AgentOrder(
            id=order_id,
            server=server,
            kind=cast(OrderKind, kind),
            params=json.loads(text),
            status="pending",
            created_at=from_epoch(now),
            finished_at=None,
            result=None,
            error=None,
        )

    def get(self, order_id: int) -> AgentOrder:
        """One order, or NotFound."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(agent_orders).where(agent_orders.c.id == order_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"order {order_id} does not exist")
        return order_from_row(row)

    def list_orders(
        self, *, server: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[AgentOrder]:
        """Orders, oldest first (the order agents carry them out in)."""
        query = select(agent_orders).order_by(agent_orders.c.id).limit(limit)
        if server is not None:
            query = query.where(agent_orders.c.server == server)
        if status is not None:
            query = query.where(agent_orders.c.status == status)
        with read_transaction(self.engine) as conn:
            return [order_from_row(row) for row in conn.execute(query)]

    def has_pending(self, server: str) -> bool:
        """Whether the agent has orders to carry out (cheap: the session asks every second)."""
        with read_transaction(self.engine) as conn:
            return (
                conn.execute(
                    select(agent_orders.c.id)
                    .where(agent_orders.c.server == server, agent_orders.c.status == "pending")
                    .limit(1)
                ).first()
                is not None
            )

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
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                select(agent_orders).where(agent_orders.c.id == order_id)
            ).one_or_none()
            if row is None or row.server != server:
                raise NotFound(f"order {order_id} does not exist for server {server}")
            if row.status != "pending":
                raise Conflict(f"order {order_id} is already {row.status}")
            done = conn.execute(
                update(agent_orders)
                .where(agent_orders.c.id == order_id)
                .values(
                    status=status,
                    finished_at=now,
                    result=None if result is None else json.dumps(result, sort_keys=True),
                    error=error,
                )
                .returning(*agent_orders.c)
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind=f"order.{status}",
                subject=f"server:{server}",
                after={"order": order_id, "kind": row.kind, "error": error},
            )
            return order_from_row(done)
