"""Every row of every table of a store, read to prove that a refused action changed nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from buildcoord.store import Store
from buildcoord.store.engine import read_transaction
from buildcoord.store.schema import metadata

StoreState = Callable[[], dict[str, list[tuple[Any, ...]]]]


def state_of(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with read_transaction(store.engine) as conn:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(select(table).order_by(*order)).all()
            state[table.name] = [tuple(row) for row in rows]
    return state
