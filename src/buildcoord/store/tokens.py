"""API tokens, stored as SHA-256 hashes of their secrets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, insert, or_, select, update

from buildcoord.errors import Conflict, NotFound
from buildcoord.models import Token
from buildcoord.store.engine import read_transaction, write_transaction
from buildcoord.store.events import append_event
from buildcoord.store.schema import servers, tokens
from buildcoord.store.timestamps import from_epoch, from_epoch_or_none

BOOTSTRAP_NAME = "admin (BUILDCOORD_ADMIN_TOKEN)"


def _token(row: Row[Any]) -> Token:
    return Token(
        id=row.id,
        name=row.name,
        kind=row.kind,
        server=row.server,
        created_at=from_epoch(row.created_at),
        revoked_at=from_epoch_or_none(row.revoked_at),
    )


def _live(now: float) -> Any:
    """Not revoked by ``now``."""
    return or_(tokens.c.revoked_at.is_(None), tokens.c.revoked_at > now)


class TokenStore:
    """SQL for tokens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_token(
        self, *, name: str, kind: str, server: str | None, token_hash: str, now: float, actor: str
    ) -> Token:
        """Insert a token record."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                insert(tokens)
                .values(name=name, kind=kind, server=server, token_hash=token_hash, created_at=now)
                .returning(*tokens.c)
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="token.created",
                subject=f"token:{row.id}",
                after={"name": name, "kind": kind, "server": server},
            )
            return _token(row)

    def find_live_token(self, token_hash: str, *, now: float) -> Token | None:
        """Return the token with this hash if it is not revoked by ``now`` (a rotated agent
        token is revoked at the end of its grace period, a time still to come)."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(tokens).where(tokens.c.token_hash == token_hash, _live(now))
            ).one_or_none()
        return None if row is None else _token(row)

    def rotate_agent_token(
        self, server: str, *, token_hash: str, grace_until: float, now: float, actor: str
    ) -> Token:
        """Give a server a new agent token; its live ones stay valid until ``grace_until``."""
        with write_transaction(self.engine) as conn:
            if conn.execute(select(servers.c.name).where(servers.c.name == server)).first() is None:
                raise NotFound(f"server {server} does not exist")
            conn.execute(
                update(tokens)
                .where(tokens.c.server == server, tokens.c.kind == "agent", _live(grace_until))
                .values(revoked_at=grace_until)
            )
            row = conn.execute(
                insert(tokens)
                .values(
                    name=f"agent {server}",
                    kind="agent",
                    server=server,
                    token_hash=token_hash,
                    created_at=now,
                )
                .returning(*tokens.c)
            ).one()
            append_event(
                conn,
                at=now,
                actor=actor,
                kind="token.rotated",
                subject=f"server:{server}",
                after={"token": row.id, "old_valid_until": grace_until},
            )
            return _token(row)

    def list_tokens(self) -> list[Token]:
        """Return every token record, revoked ones included."""
        with read_transaction(self.engine) as conn:
            return [_token(row) for row in conn.execute(select(tokens).order_by(tokens.c.id))]

    def revoke_token(self, token_id: int, *, now: float, actor: str) -> Token:
        """Revoke a live token."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(tokens).where(tokens.c.id == token_id)).one_or_none()
            if row is None:
                raise NotFound(f"token {token_id} does not exist")
            if row.revoked_at is not None and row.revoked_at <= now:
                raise Conflict(f"token {token_id} is already revoked")
            conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=now))
            append_event(
                conn, at=now, actor=actor, kind="token.revoked", subject=f"token:{token_id}"
            )
            return _token(conn.execute(select(tokens).where(tokens.c.id == token_id)).one())

    def install_bootstrap_token(self, token_hash: str, *, now: float) -> None:
        """Make the BUILDCOORD_ADMIN_TOKEN secret a live operator token, revoking older ones."""
        with write_transaction(self.engine) as conn:
            live = conn.execute(
                select(tokens).where(tokens.c.token_hash == token_hash)
            ).one_or_none()
            stale = conn.execute(
                update(tokens)
                .where(
                    tokens.c.name == BOOTSTRAP_NAME,
                    tokens.c.revoked_at.is_(None),
                    tokens.c.token_hash != token_hash,
                )
                .values(revoked_at=now)
            ).rowcount
            if stale:
                append_event(
                    conn, at=now, actor="system", kind="token.rotated", subject="token:bootstrap"
                )
            if live is None:
                conn.execute(
                    insert(tokens).values(
                        name=BOOTSTRAP_NAME,
                        kind="operator",
                        token_hash=token_hash,
                        created_at=now,
                    )
                )
                append_event(
                    conn, at=now, actor="system", kind="token.created", subject="token:bootstrap"
                )
            elif live.revoked_at is not None:
                raise Conflict("BUILDCOORD_ADMIN_TOKEN was revoked; set a new secret")
