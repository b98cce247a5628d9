"""Authentication is cached for a moment; a revocation through this process ends it at once.

While the process's change feed follows the event log, an entry lasts longer, and a
revocation made anywhere ends it as soon as the feed reads the revocation's event."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select, update

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Unauthorized
from buildcoord.models import Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.tokens import AUTH_CACHE_SECONDS, FOLLOWED_CACHE_SECONDS, hash_secret
from buildcoord.store import Store
from buildcoord.store.engine import Driver, write_transaction
from buildcoord.store.events import record_event, token_revocations
from buildcoord.store.schema import tokens
from buildcoord.store.tokens import TokenStore


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The token hashes authentication read from the store."""
    seen: list[str] = []
    original = TokenStore.find_live_token

    def counted(self: TokenStore, token_hash: str, *, now: float) -> object:
        seen.append(token_hash)
        return original(self, token_hash, now=now)

    monkeypatch.setattr(TokenStore, "find_live_token", counted)
    return seen


def _revoke_elsewhere(store: Store, secret: str) -> None:
    """Revoke as another coordinator on the same database would: no event in this process."""
    with write_transaction(store.engine) as conn:
        conn.execute(
            update(tokens).where(tokens.c.token_hash == hash_secret(secret)).values(revoked_at=1.0)
        )


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll condition for up to 5 s (the feed looks every 0.1 s)."""
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def following(coordinator: Coordinator) -> Iterator[Callable[[], None]]:
    """Keep the coordinator's change feed following; the returned call waits for a new look."""
    stop = coordinator.feed.subscribe(lambda events: None)

    def looked() -> None:
        _wait_until(coordinator.feed.following, "the feed to look")

    looked()
    yield looked
    stop()


def _revoke_elsewhere_with_its_event(store: Store, secret: str) -> None:
    """Revoke as another coordinator would, with the event it appends (nothing bumped here)."""
    with write_transaction(store.engine) as conn:
        token_id = conn.execute(
            select(tokens.c.id).where(tokens.c.token_hash == hash_secret(secret))
        ).scalar_one()
        conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=1.0))
        record_event(
            Driver.within(conn),
            at=1.0,
            actor="operator elsewhere",
            kind="token.revoked",
            subject=f"token:{token_id}",
        )


def _advance_past_the_short_cache(clock: FakeClock, looked: Callable[[], None]) -> None:
    clock.advance(AUTH_CACHE_SECONDS + 10)
    looked()  # the feed's last look is now fresh on the advanced clock


def test_it_reads_a_token_once_within_the_cache_time(
    coordinator: Coordinator, operator: Principal, clock: FakeClock, lookups: list[str]
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)

    first = coordinator.tokens.authenticate(issued.secret)
    clock.advance(AUTH_CACHE_SECONDS - 0.1)
    again = coordinator.tokens.authenticate(issued.secret)
    cached = coordinator.tokens.cached(issued.secret)

    assert first == again == cached == Principal("operator", "ci")
    assert lookups == [hash_secret(issued.secret)]


def test_it_sees_a_revocation_by_another_coordinator_once_the_cache_time_is_over(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    clock: FakeClock,
    lookups: list[str],
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)
    coordinator.tokens.authenticate(issued.secret)

    _revoke_elsewhere(store, issued.secret)
    assert coordinator.tokens.authenticate(issued.secret).name == "ci"  # still cached
    clock.advance(AUTH_CACHE_SECONDS)

    assert coordinator.tokens.cached(issued.secret) is None
    with pytest.raises(Unauthorized, match="invalid or revoked token"):
        coordinator.tokens.authenticate(issued.secret)
    assert len(lookups) == 2


def test_a_revocation_through_this_process_takes_effect_at_once(
    coordinator: Coordinator, operator: Principal, clock: FakeClock
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)
    other = coordinator.tokens.create("dashboard", kind="read", by=operator)
    coordinator.tokens.authenticate(issued.secret)
    coordinator.tokens.authenticate(other.secret)

    coordinator.tokens.revoke(issued.token.id, by=operator)

    assert coordinator.tokens.cached(issued.secret) is None
    with pytest.raises(Unauthorized, match="invalid or revoked token"):
        coordinator.tokens.authenticate(issued.secret)
    assert coordinator.tokens.authenticate(other.secret).kind == "read"


def test_removing_a_server_ends_its_cached_agent_token_at_once(
    coordinator: Coordinator, operator: Principal, clock: FakeClock
) -> None:
    _, secret = coordinator.servers.register("build1", by=operator)
    assert coordinator.tokens.authenticate(secret).server == "build1"

    coordinator.servers.remove("build1", by=operator)

    with pytest.raises(Unauthorized, match="invalid or revoked token"):
        coordinator.tokens.authenticate(secret)


def test_rotating_the_admin_token_ends_the_old_one_for_every_coordinator_in_the_process(
    store: Store, clock: FakeClock
) -> None:
    old, new = "old-admin-token-0123456789", "new-admin-token-0123456789"
    first = Coordinator(store, Settings(admin_token=old), clock)
    first.start()
    assert first.tokens.authenticate(old).kind == "operator"

    Coordinator(store, Settings(admin_token=new), clock).start()

    with pytest.raises(Unauthorized):
        first.tokens.authenticate(old)


def test_it_does_not_cache_what_it_read_while_a_revocation_was_committing(
    coordinator: Coordinator,
    operator: Principal,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    lookups: list[str],
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)
    original = TokenStore.find_live_token

    def read_then_revocation_commits(self: TokenStore, token_hash: str, *, now: float) -> object:
        found = original(self, token_hash, now=now)  # sees the token live ...
        token_revocations.bump()  # ... while a revocation commits
        return found

    monkeypatch.setattr(TokenStore, "find_live_token", read_then_revocation_commits)
    assert coordinator.tokens.authenticate(issued.secret).name == "ci"

    assert coordinator.tokens.cached(issued.secret) is None


def test_it_never_caches_an_unknown_token(
    coordinator: Coordinator, operator: Principal, clock: FakeClock, lookups: list[str]
) -> None:
    with pytest.raises(Unauthorized):
        coordinator.tokens.authenticate("bc_not-a-real-token")
    with pytest.raises(Unauthorized):
        coordinator.tokens.authenticate("bc_not-a-real-token")

    assert len(lookups) == 2
    assert coordinator.tokens.cached("bc_not-a-real-token") is None
    assert coordinator.tokens.cached(None) is None


def test_while_the_feed_follows_a_token_stays_cached_until_the_feed_reads_a_revocation(
    coordinator: Coordinator,
    store: Store,
    operator: Principal,
    clock: FakeClock,
    lookups: list[str],
    following: Callable[[], None],
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)
    coordinator.tokens.authenticate(issued.secret)
    _advance_past_the_short_cache(clock, following)

    assert coordinator.tokens.authenticate(issued.secret).name == "ci"
    assert len(lookups) == 1
    generation = token_revocations.generation
    _revoke_elsewhere_with_its_event(store, issued.secret)
    assert token_revocations.generation == generation  # nothing in this process knew

    deadline = time.monotonic() + 5.0
    while coordinator.tokens.cached(issued.secret) is not None:
        assert time.monotonic() < deadline, "the feed never ended the cached token"
        time.sleep(0.01)
    with pytest.raises(Unauthorized, match="invalid or revoked token"):
        coordinator.tokens.authenticate(issued.secret)


def test_a_followed_entry_ends_after_the_longer_cache_time(
    coordinator: Coordinator,
    operator: Principal,
    clock: FakeClock,
    lookups: list[str],
    following: Callable[[], None],
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)
    coordinator.tokens.authenticate(issued.secret)

    clock.advance(FOLLOWED_CACHE_SECONDS)
    following()

    assert coordinator.tokens.cached(issued.secret) is None
    coordinator.tokens.authenticate(issued.secret)
    assert len(lookups) == 2


def test_an_entry_read_before_the_feed_restarted_gets_only_the_short_cache_time(
    coordinator: Coordinator, operator: Principal, clock: FakeClock
) -> None:
    issued = coordinator.tokens.create("ci", by=operator)
    stop = coordinator.feed.subscribe(lambda events: None)
    _wait_until(coordinator.feed.following, "the feed to look")
    coordinator.tokens.authenticate(issued.secret)
    stop()
    # a revocation elsewhere now would go unseen here
    _wait_until(lambda: not coordinator.feed.running, "the feed to stop")

    stop = coordinator.feed.subscribe(lambda events: None)
    try:
        clock.advance(AUTH_CACHE_SECONDS + 1)
        _wait_until(coordinator.feed.following, "the restarted feed to look")

        assert coordinator.tokens.cached(issued.secret) is None
    finally:
        stop()
