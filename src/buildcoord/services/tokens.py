"""API tokens: secrets are random, shown once, and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from buildcoord import validation
from buildcoord.clock import Clock
from buildcoord.errors import InvalidInput, Unauthorized
from buildcoord.models import IssuedToken, Principal, Token
from buildcoord.services.authority import require_operator
from buildcoord.store import Store

PREFIX = "bc_"


def new_secret() -> str:
    """Return a fresh token secret (256 random bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Return the stored form of a secret; a fast hash suffices for 256-bit random secrets."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenService:
    """Create, list, revoke tokens and authenticate requests."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def authenticate(self, secret: str | None) -> Principal:
        """Return who holds this secret, or raise Unauthorized."""
        if not secret:
            raise Unauthorized("missing bearer token: set BUILDCOORD_TOKEN or pass --token")
        token = self.store.tokens.find_live_token(hash_secret(secret))
        if token is None:
            raise Unauthorized("invalid or revoked token")
        return Principal(kind=token.kind, name=token.name, server=token.server)

    def create(self, name: str, *, kind: str = "operator", by: Principal) -> IssuedToken:
        """Create an operator or read-only token."""
        require_operator(by, "creating tokens")
        validation.text(name, what="token name", maximum=100)
        if kind not in ("operator", "read"):
            raise InvalidInput(
                f"invalid token kind {kind!r}: operator or read (agent tokens come from "
                "'servers add')"
            )
        secret = new_secret()
        token = self.store.tokens.create_token(
            name=name,
            kind=kind,
            server=None,
            token_hash=hash_secret(secret),
            now=self.clock.now().timestamp(),
            actor=by.actor,
        )
        return IssuedToken(token=token, secret=secret)

    def list_tokens(self, *, by: Principal) -> list[Token]:
        """Return every token record."""
        require_operator(by, "listing tokens")
        return self.store.tokens.list_tokens()

    def revoke(self, token_id: int, *, by: Principal) -> Token:
        """Revoke a token."""
        require_operator(by, "revoking tokens")
        return self.store.tokens.revoke_token(
            token_id, now=self.clock.now().timestamp(), actor=by.actor
        )

    def install_admin_token(self, secret: str) -> None:
        """Make BUILDCOORD_ADMIN_TOKEN a live operator token."""
        if len(secret) < 16:
            raise InvalidInput("BUILDCOORD_ADMIN_TOKEN must be at least 16 characters")
        self.store.tokens.install_bootstrap_token(
            hash_secret(secret), now=self.clock.now().timestamp()
        )
