"""API tokens: secrets are random, shown once, and stored only as SHA-256 hashes.

Authentication is cached in process for ``AUTH_CACHE_SECONDS`` (keyed by the token's hash,
live tokens only), so that a busy agent's requests do not each read the tokens table. A
revocation made through this process (revoking a token, removing a server, rotating the
admin token) drops the cache at once; one made by another coordinator on the same database
takes effect here within AUTH_CACHE_SECONDS, or, while this process's change feed follows the
event log (whenever an agent session is open), as soon as the feed reads the revocation's
event (a tenth of a second) — the entry is then trusted up to FOLLOWED_CACHE_SECONDS.

Build tokens (``bcb_…``, see services/build_tokens.py) are checked by their mac alone, with
the key read once per process; they are never cached and never read the tokens table.
"""

from __future__ import annotations

import hashlib
import secrets
import threading

from buildcoord import validation
from buildcoord.clock import Clock
from buildcoord.errors import Conflict, InvalidInput, Unauthorized
from buildcoord.models import IssuedToken, Principal, Token
from buildcoord.services import build_tokens
from buildcoord.services.authority import require_operator, require_self_or_operator
from buildcoord.services.feed import ChangeFeed
from buildcoord.store import Store
from buildcoord.store.events import token_revocations

PREFIX = "bc_"
AUTH_CACHE_SECONDS = 2.0
"""How long an authenticated token is trusted without reading it again."""

FOLLOWED_CACHE_SECONDS = 60.0
"""How long, while this process's change feed follows the event log: a revocation anywhere
(another coordinator, another worker) then ends the entry within a look of the feed, not by
age. Idle agents send a heartbeat every 5 s: with only the 2 s above, each one read its token."""
_CACHE_LIMIT = 10_000  # entries; expired ones are dropped when the cache is this full


def new_secret() -> str:
    """Return a fresh token secret (256 random bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Return the stored form of a secret; a fast hash suffices for 256-bit random secrets."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenService:
    """Create, list, revoke tokens and authenticate requests."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        cache_seconds: float = AUTH_CACHE_SECONDS,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.feed = feed
        # token hash -> (monotonic time read, revocation generation when read, the feed's
        # epoch if it was following then, principal, when a rotated token ends (epoch))
        self._cache: dict[str, tuple[float, int, int | None, Principal, float | None]] = {}
        self._lock = threading.Lock()
        self._build_key: str | None = None

    def authenticate(self, secret: str | None) -> Principal:
        """Return who holds this secret, or raise Unauthorized."""
        if not secret:
            raise Unauthorized("missing bearer token: set BUILDCOORD_TOKEN or pass --token")
        if build_tokens.is_build_token(secret):
            key = self._checking_key()
            build = None if key is None else build_tokens.verify(key, secret)
            if build is None:
                raise Unauthorized("invalid build token")
            return build
        token_hash = hash_secret(secret)
        known = self._cached(token_hash)
        if known is not None:
            return known
        generation = token_revocations.generation
        epoch = self._following_epoch()
        token = self.store.find_live_token(token_hash, now=self.clock.now().timestamp())
        if token is None:
            raise Unauthorized("invalid or revoked token")
        principal = Principal(kind=token.kind, name=token.name, server=token.server)
        if self.cache_seconds > 0:
            ends = None if token.revoked_at is None else token.revoked_at.timestamp()
            self._remember(token_hash, principal, generation, epoch, ends)
        return principal

    def cached(self, secret: str | None) -> Principal | None:
        """Who holds this secret, if this process authenticated it lately; never reads the store.

        None means "ask authenticate", which may still succeed (or raise Unauthorized).
        """
        if not secret:
            return None
        if build_tokens.is_build_token(secret):
            key = self._build_key
            return None if key is None else build_tokens.verify(key, secret)
        return self._cached(hash_secret(secret))

    def _signing_key(self) -> str:
        """The key build tokens are signed with, made on first use."""
        if self._build_key is None:
            self._build_key = self.store.get_or_create_setting(
                build_tokens.KEY_SETTING, build_tokens.new_key()
            )
        return self._build_key

    def _checking_key(self) -> str | None:
        """The key, if one was made yet: authenticating never makes one.

        So a made-up build token writes nothing; before the first build token was issued,
        none can be valid anyway.
        """
        if self._build_key is None:
            self._build_key = self.store.get_setting(build_tokens.KEY_SETTING)
        return self._build_key

    def issue_build_token(
        self, job_id: int, *, server: str, fencing_token: int, by: Principal
    ) -> str:
        """A token for the build of a job, given only to the agent holding its lease.

        The build may append to this job's log with it while this lease lasts, and do
        nothing else (see services/build_tokens.py).
        """
        require_self_or_operator(by, server, "get build tokens")
        job = self.store.get_job(job_id)
        if job.status != "running" or job.server != server:
            raise Conflict(f"job {job_id} is not running on {server}")
        if job.fencing_token != fencing_token:
            raise Conflict(
                f"stale fencing token {fencing_token} for job {job_id}: "
                f"the current lease has token {job.fencing_token}"
            )
        return build_tokens.sign(self._signing_key(), job_id, fencing_token)

    def _following_epoch(self) -> int | None:
        """The feed's epoch if it follows the event log now (else None)."""
        feed = self.feed
        return feed.epoch if feed is not None and feed.following() else None

    def _cached(self, token_hash: str) -> Principal | None:
        """A cached principal: within ``cache_seconds``, or within ``FOLLOWED_CACHE_SECONDS``
        if the feed followed the log when the token was read and has not stopped since (a
        restarted feed skips what happened while it was stopped)."""
        entry = self._cache.get(token_hash)
        if entry is None:
            return None
        read_at, generation, epoch, principal, ends = entry
        if generation != token_revocations.generation:
            return None
        if ends is not None and self.clock.now().timestamp() >= ends:
            return None
        age = self.clock.monotonic() - read_at
        if age < self.cache_seconds:
            return principal
        if epoch is not None and age < FOLLOWED_CACHE_SECONDS and self._following_epoch() == epoch:
            return principal
        return None

    def _remember(
        self,
        token_hash: str,
        principal: Principal,
        generation: int,
        epoch: int | None,
        ends: float | None = None,
    ) -> None:
        now = self.clock.monotonic()
        longest = max(self.cache_seconds, FOLLOWED_CACHE_SECONDS)
        with self._lock:
            # A revocation that started after the read began may have hidden from it.
            if generation != token_revocations.generation:
                return
            if len(self._cache) >= _CACHE_LIMIT:
                current = token_revocations.generation
                self._cache = {
                    key: entry
                    for key, entry in self._cache.items()
                    if entry[0] + longest > now and entry[1] == current
                }
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[token_hash] = (now, generation, epoch, principal, ends)

    def create(self, name: str, *, kind: str = "operator", by: Principal) -> IssuedToken:
        """Create an operator or read-only token."""
        require_operator(by, "creating tokens")
        validation.text(name, what="token name", maximum=validation.TOKEN_NAME_LIMIT)
        if kind not in ("operator", "read"):
            raise InvalidInput(
                f"invalid token kind {kind!r}: operator or read (agent tokens come from "
                "'servers add')"
            )
        secret = new_secret()
        token = self.store.create_token(
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
        return self.store.list_tokens()

    def revoke(self, token_id: int, *, by: Principal) -> Token:
        """Revoke a token."""
        require_operator(by, "revoking tokens")
        return self.store.revoke_token(token_id, now=self.clock.now().timestamp(), actor=by.actor)

    def install_admin_token(self, secret: str) -> None:
        """Make BUILDCOORD_ADMIN_TOKEN a live operator token."""
        if len(secret) < 16:
            raise InvalidInput("BUILDCOORD_ADMIN_TOKEN must be at least 16 characters")
        self.store.install_bootstrap_token(hash_secret(secret), now=self.clock.now().timestamp())
