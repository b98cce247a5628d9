"""Small persisted settings the coordinator must remember between starts."""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.schema import settings


class SettingStore:
    """SQL for the settings table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get_setting(self, key: str) -> str | None:
        """Return a stored value or None."""
        with read_transaction(self.engine) as conn:
            return conn.execute(
                select(settings.c.value).where(settings.c.key == key)
            ).scalar_one_or_none()

    def put_setting(self, key: str, value: str) -> None:
        """Store a value, replacing any earlier one."""
        with write_transaction(self.engine) as conn:
            if not conn.execute(
                update(settings).where(settings.c.key == key).values(value=value)
            ).rowcount:
                conn.execute(settings.insert().values(key=key, value=value))
