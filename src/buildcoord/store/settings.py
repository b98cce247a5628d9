"""Small persisted settings the coordinator must remember between starts."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from buildcoord.errors import Unavailable
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
        """Store a value, replacing any earlier one (an upsert: safe with several writers)."""
        with write_transaction(self.engine) as conn:
            make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            statement = make(settings).values(key=key, value=value)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[settings.c.key], set_={"value": statement.excluded.value}
                )
            )

    def get_or_create_setting(self, key: str, value: str) -> str:
        """Return the stored value, storing ``value`` first if there is none.

        The insert does nothing when the key exists, so coordinators racing to create it on
        one database all read back the one value that won.
        """
        with write_transaction(self.engine) as conn:
            make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            statement = make(settings).values(key=key, value=value)
            conn.execute(statement.on_conflict_do_nothing(index_elements=[settings.c.key]))
            stored: str = conn.execute(
                select(settings.c.value).where(settings.c.key == key)
            ).scalar_one()
            return stored

    def probe_write(self, key: str, value: str) -> None:
        """Write a value as put_setting does; Unavailable with the database's refusal, in one
        line, when the database takes no write (a full disk, a read-only file or standby)."""
        try:
            self.put_setting(key, value)
        except SQLAlchemyError as exc:
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            lines = str(cause).strip().splitlines() or [type(cause).__name__]
            raise Unavailable(lines[0].strip()) from exc
