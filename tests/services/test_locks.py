"""Named locks and semaphores: fencing tokens, holders, forced release, expired-lease recovery."""

from __future__ import annotations

import pytest

from buildcoord.clock import FakeClock
from buildcoord.config import Settings
from buildcoord.errors import Conflict, Forbidden, InvalidInput, NotFound
from buildcoord.models import Message, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from store_rows import StoreState

from .conftest import RegisterServer

TTL = Settings().lock_ttl_seconds


def system_messages(coordinator: Coordinator, operator: Principal) -> list[Message]:
    """Every message the system sent."""
    return [
        message
        for message in coordinator.messages.list_messages(by=operator)
        if message.sender == "system"
    ]


def holders(coordinator: Coordinator, name: str, operator: Principal) -> list[tuple[str, int]]:
    """The (holder, token) pairs of one lock, in acquisition order."""
    for lock in coordinator.locks.list_locks(by=operator):
        if lock.name == name:
            return [(lease.holder, lease.token) for lease in lock.holders]
    return []


# -- acquire --------------------------------------------------------------------------------------


def test_it_returns_a_fencing_token_that_rises_with_every_new_lease_of_a_name(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    locks = coordinator.locks
    tokens = [locks.acquire("deploy", "h1", by=operator).token]
    locks.release("deploy", "h1", by=operator)
    tokens.append(locks.acquire("deploy", "h2", by=operator).token)
    clock.advance(TTL + 1)
    locks.recover_expired(by=operator)
    tokens.append(locks.acquire("deploy", "h1", by=operator).token)

    assert tokens == [1, 2, 3]


def test_it_counts_fencing_tokens_per_lock_name(
    coordinator: Coordinator, operator: Principal
) -> None:
    coordinator.locks.acquire("deploy", "h1", by=operator)
    coordinator.locks.acquire("deploy-2", "h1", by=operator)

    assert coordinator.locks.acquire("other", "h1", by=operator).token == 1


def test_it_leases_a_lock_for_the_default_ttl(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    grant = coordinator.locks.acquire("deploy", "h1", by=operator)

    assert grant.expires_at.timestamp() == clock.now().timestamp() + TTL
    assert not grant.reentered


def test_it_lets_the_same_holder_reacquire_with_the_same_token_and_a_fresh_expiry(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    first = coordinator.locks.acquire("deploy", "h1", by=operator)
    clock.advance(100)

    again = coordinator.locks.acquire("deploy", "h1", ttl=50, by=operator)

    assert again.token == first.token
    assert again.reentered
    assert again.expires_at.timestamp() == clock.now().timestamp() + 50
    assert holders(coordinator, "deploy", operator) == [("h1", first.token)]


def test_it_refuses_another_holder_naming_the_current_one_and_changes_nothing(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    coordinator.locks.acquire("deploy", "h1", by=operator)
    before = store_state()

    with pytest.raises(Conflict) as refused:
        coordinator.locks.acquire("deploy", "h2", by=operator)

    assert str(refused.value) == "Lock 'deploy' is held by h1"
    assert store_state() == before


def test_it_admits_as_many_holders_as_a_semaphore_has_capacity(
    coordinator: Coordinator, operator: Principal
) -> None:
    grants = [
        coordinator.locks.acquire("runners", holder, capacity=3, by=operator)
        for holder in ("h1", "h2", "h3")
    ]

    assert [grant.token for grant in grants] == [1, 2, 3]
    with pytest.raises(Conflict) as refused:
        coordinator.locks.acquire("runners", "h4", by=operator)
    assert str(refused.value) == "Lock 'runners' is held by h1, h2, h3"


def test_it_admits_the_next_holder_of_a_full_semaphore_once_one_releases(
    coordinator: Coordinator, operator: Principal
) -> None:
    for holder in ("h1", "h2"):
        coordinator.locks.acquire("runners", holder, capacity=2, by=operator)

    coordinator.locks.release("runners", "h1", by=operator)

    assert coordinator.locks.acquire("runners", "h3", by=operator).token == 3
    assert holders(coordinator, "runners", operator) == [("h2", 2), ("h3", 3)]


def test_it_takes_over_an_expired_lease_on_acquire(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    coordinator.locks.acquire("deploy", "h1", by=operator)
    clock.advance(TTL + 1)

    grant = coordinator.locks.acquire("deploy", "h2", by=operator)

    assert grant.token == 2
    assert holders(coordinator, "deploy", operator) == [("h2", 2)]
    [message] = system_messages(coordinator, operator)
    assert message.body == "Released expired lock 'deploy' that was held by h1"


def test_it_refuses_bad_names_holders_ttls_and_capacities_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()
    cases: dict[str, tuple[str, str, float | None, int | None]] = {
        "empty name": ("", "h1", None, None),
        "blank name": ("   ", "h1", None, None),
        "long name": ("x" * 201, "h1", None, None),
        "control character": ("a\nb", "h1", None, None),
        "holder with a space": ("deploy", "h 1", None, None),
        "empty holder": ("deploy", "", None, None),
        "zero ttl": ("deploy", "h1", 0, None),
        "negative ttl": ("deploy", "h1", -5, None),
        "ttl over a week": ("deploy", "h1", 8 * 24 * 3600, None),
        "capacity zero": ("deploy", "h1", None, 0),
        "capacity too big": ("deploy", "h1", None, 10_001),
    }

    for case, (name, holder, ttl, capacity) in cases.items():
        with subtests.test(case=case), pytest.raises(InvalidInput):
            coordinator.locks.acquire(name, holder, ttl=ttl, capacity=capacity, by=operator)

    assert store_state() == before


def test_it_handles_lock_names_with_spaces_and_quotes(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    name = """release "v2" 'final' build"""
    grant = coordinator.locks.acquire(name, "h1", by=operator)

    with pytest.raises(Conflict) as refused:
        coordinator.locks.acquire(name, "h2", by=operator)
    assert str(refused.value) == f"Lock '{name}' is held by h1"
    assert holders(coordinator, name, operator) == [("h1", grant.token)]
    clock.advance(TTL + 1)
    coordinator.locks.recover_expired(by=operator)
    [message] = system_messages(coordinator, operator)
    assert message.body == f"Released expired lock '{name}' that was held by h1"
    assert holders(coordinator, name, operator) == []


# -- renew ----------------------------------------------------------------------------------------


def test_it_renews_a_lease_for_its_holder_with_the_current_token(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    grant = coordinator.locks.acquire("deploy", "h1", by=operator)
    clock.advance(TTL - 1)

    renewed = coordinator.locks.renew("deploy", "h1", token=grant.token, by=operator)

    assert renewed.token == grant.token
    assert renewed.expires_at.timestamp() == clock.now().timestamp() + TTL
    clock.advance(TTL - 1)
    assert coordinator.locks.recover_expired(by=operator) == []


def test_it_refuses_a_renewal_with_a_stale_token_after_the_holder_reacquired(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, store_state: StoreState
) -> None:
    old = coordinator.locks.acquire("deploy", "h1", by=operator)
    clock.advance(TTL + 1)
    coordinator.locks.recover_expired(by=operator)
    coordinator.locks.acquire("deploy", "h1", by=operator)
    before = store_state()

    with pytest.raises(Conflict, match="stale fencing token 1"):
        coordinator.locks.renew("deploy", "h1", token=old.token, by=operator)

    assert store_state() == before


def test_it_refuses_a_renewal_by_a_holder_whose_lease_was_taken_over(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, store_state: StoreState
) -> None:
    old = coordinator.locks.acquire("deploy", "h1", by=operator)
    clock.advance(TTL + 1)
    coordinator.locks.acquire("deploy", "h2", by=operator)
    before = store_state()

    with pytest.raises(Conflict, match="Lock 'deploy' is held by h2, not h1"):
        coordinator.locks.renew("deploy", "h1", token=old.token, by=operator)

    assert store_state() == before


def test_it_reports_renewing_an_unknown_lock_as_not_found(
    coordinator: Coordinator, operator: Principal
) -> None:
    with pytest.raises(NotFound, match="lock 'nothing' does not exist"):
        coordinator.locks.renew("nothing", "h1", by=operator)


# -- release --------------------------------------------------------------------------------------


def test_it_releases_a_lease_for_its_holder(coordinator: Coordinator, operator: Principal) -> None:
    grant = coordinator.locks.acquire("deploy", "h1", by=operator)

    released = coordinator.locks.release("deploy", "h1", token=grant.token, by=operator)

    assert released == ["h1"]
    assert holders(coordinator, "deploy", operator) == []


def test_it_refuses_a_release_by_a_non_holder_and_changes_nothing(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    coordinator.locks.acquire("deploy", "h1", by=operator)
    before = store_state()

    with pytest.raises(Conflict, match="Lock 'deploy' is held by h1, not h2"):
        coordinator.locks.release("deploy", "h2", by=operator)

    assert store_state() == before


def test_it_refuses_a_release_with_a_stale_token_unless_forced(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    grant = coordinator.locks.acquire("deploy", "h1", by=operator)
    before = store_state()

    with pytest.raises(Conflict, match="stale fencing token"):
        coordinator.locks.release("deploy", "h1", token=grant.token + 1, by=operator)

    assert store_state() == before
    forced = coordinator.locks.release(
        "deploy", "h1", token=grant.token + 1, force=True, by=operator
    )
    assert forced == ["h1"]


def test_it_lets_an_operator_force_the_release_of_every_lease(
    coordinator: Coordinator, store: Store, operator: Principal
) -> None:
    for holder in ("h1", "h2"):
        coordinator.locks.acquire("runners", holder, capacity=2, by=operator)

    released = coordinator.locks.release("runners", None, force=True, by=operator)

    assert released == ["h1", "h2"]
    assert holders(coordinator, "runners", operator) == []
    [first, second] = [
        event
        for event in store.events.list_events(subject="lock:runners")
        if event.kind == "lock.released"
    ]
    assert (first.before, first.after) == ({"holder": "h1"}, {"forced": True})
    assert (second.before, second.after) == ({"holder": "h2"}, {"forced": True})


def test_it_forbids_an_agent_to_force_a_release(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    store_state: StoreState,
) -> None:
    build1 = register_server("build1")
    coordinator.locks.acquire("deploy", "build1", by=build1)
    before = store_state()

    with pytest.raises(Forbidden):
        coordinator.locks.release("deploy", "build1", force=True, by=build1)

    assert store_state() == before


def test_it_forbids_an_agent_to_take_or_release_a_lock_as_another_holder(
    coordinator: Coordinator,
    operator: Principal,
    register_server: RegisterServer,
    store_state: StoreState,
) -> None:
    build1 = register_server("build1")
    build2 = register_server("build2")
    coordinator.locks.acquire("deploy", "build1", by=build1)
    before = store_state()

    with pytest.raises(Forbidden):
        coordinator.locks.acquire("other", "build1", by=build2)
    with pytest.raises(Forbidden):
        coordinator.locks.release("deploy", "build1", by=build2)

    assert store_state() == before


def test_it_forbids_a_read_principal_to_take_a_lock(
    coordinator: Coordinator, reader: Principal, store_state: StoreState
) -> None:
    before = store_state()

    with pytest.raises(Forbidden):
        coordinator.locks.acquire("deploy", "h1", by=reader)

    assert store_state() == before


def test_it_forbids_a_build_to_take_renew_or_release_a_lock(
    coordinator: Coordinator, operator: Principal, store_state: StoreState
) -> None:
    build = Principal("build", "job 1", job_id=1, fencing_token=1)
    coordinator.locks.acquire("deploy", "build1", by=operator)
    before = store_state()

    with pytest.raises(Forbidden):
        coordinator.locks.acquire("other", "build1", by=build)
    with pytest.raises(Forbidden):
        coordinator.locks.renew("deploy", "build1", by=build)
    with pytest.raises(Forbidden):
        coordinator.locks.release("deploy", "build1", by=build)

    assert store_state() == before


def test_it_reports_releasing_an_unknown_lock_as_not_found(
    coordinator: Coordinator, operator: Principal
) -> None:
    with pytest.raises(NotFound, match="lock 'nothing' does not exist"):
        coordinator.locks.release("nothing", "h1", by=operator)


# -- expired-lease recovery -----------------------------------------------------------------------


def test_it_recovers_only_expired_leases(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    coordinator.locks.acquire("short", "h1", ttl=60, by=operator)
    coordinator.locks.acquire("long", "h2", ttl=3600, by=operator)
    clock.advance(61)

    released = coordinator.locks.recover_expired(by=operator)

    assert [(lease.name, lease.holder, lease.token) for lease in released] == [("short", "h1", 1)]
    assert holders(coordinator, "short", operator) == []
    assert holders(coordinator, "long", operator) == [("h2", 1)]


def test_it_keeps_a_lease_until_its_expiry_has_passed(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    coordinator.locks.acquire("deploy", "h1", ttl=60, by=operator)
    clock.advance(60)

    assert coordinator.locks.recover_expired(by=operator) == []
    assert holders(coordinator, "deploy", operator) == [("h1", 1)]


def test_it_posts_one_system_warning_to_all_for_a_recovered_lock(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    coordinator.locks.acquire("deploy", "h1", by=operator)
    clock.advance(TTL + 1)

    coordinator.locks.recover_expired(by=operator)

    [message] = coordinator.messages.list_messages(by=operator)
    assert (message.sender, message.recipient, message.type) == ("system", "all", "warning")
    assert message.subject == "Lock timeout recovery"
    assert message.body == "Released expired lock 'deploy' that was held by h1"
    assert message.created_at == clock.now()
    assert not message.read


def test_it_posts_one_message_for_each_of_two_expired_locks(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    coordinator.locks.acquire("deploy", "h1", by=operator)
    coordinator.locks.acquire("db migrate", "h2", by=operator)
    clock.advance(TTL + 1)

    coordinator.locks.recover_expired(by=operator)

    bodies = sorted(message.body for message in system_messages(coordinator, operator))
    assert bodies == [
        "Released expired lock 'db migrate' that was held by h2",
        "Released expired lock 'deploy' that was held by h1",
    ]


def test_it_posts_one_message_per_expired_lease_of_a_semaphore(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    for holder in ("h1", "h2"):
        coordinator.locks.acquire("runners", holder, capacity=2, by=operator)
    clock.advance(TTL + 1)

    coordinator.locks.recover_expired(by=operator)

    bodies = sorted(message.body for message in system_messages(coordinator, operator))
    assert bodies == [
        "Released expired lock 'runners' that was held by h1",
        "Released expired lock 'runners' that was held by h2",
    ]


def test_it_posts_no_message_when_nothing_expired_and_only_the_request_is_recorded(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, store_state: StoreState
) -> None:
    coordinator.locks.acquire("deploy", "h1", by=operator)
    clock.advance(TTL - 1)
    before = store_state()
    last_event = coordinator.store.last_event_id()

    assert coordinator.locks.recover_expired(by=operator) == []

    after = store_state()
    assert {**after, "events": []} == {**before, "events": []}
    audited = coordinator.store.list_events(after_id=last_event)
    assert [(e.kind, e.actor, e.after) for e in audited] == [
        ("locks.recover", operator.actor, {"released": []})
    ]
    assert system_messages(coordinator, operator) == []


def test_it_recovers_an_expired_lease_only_once(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    coordinator.locks.acquire("deploy", "h1", by=operator)
    clock.advance(TTL + 1)

    first = coordinator.locks.recover_expired()
    second = coordinator.locks.recover_expired()

    assert (len(first), second) == (1, [])
    assert len(system_messages(coordinator, operator)) == 1


def test_it_forbids_an_agent_to_run_lock_recovery(
    coordinator: Coordinator, register_server: RegisterServer
) -> None:
    with pytest.raises(Forbidden):
        coordinator.locks.recover_expired(by=register_server("build1"))


# -- events ---------------------------------------------------------------------------------------


def test_it_records_an_event_for_every_change_of_a_lock(
    coordinator: Coordinator, store: Store, clock: FakeClock, operator: Principal
) -> None:
    locks = coordinator.locks
    grant = locks.acquire("deploy", "h1", by=operator)
    locks.acquire("deploy", "h1", by=operator)
    locks.renew("deploy", "h1", token=grant.token, by=operator)
    locks.release("deploy", "h1", by=operator)
    locks.acquire("deploy", "h2", by=operator)
    clock.advance(TTL + 1)
    locks.recover_expired()

    kinds = [event.kind for event in store.events.list_events(subject="lock:deploy")]

    assert kinds == [
        "lock.acquired",
        "lock.reacquired",
        "lock.renewed",
        "lock.released",
        "lock.acquired",
        "lock.expired_released",
    ]
    recovery = store.events.list_events(subject="lock:deploy")[-1]
    assert recovery.actor == "system:maintenance"
    assert recovery.before is not None
    assert (recovery.before["holder"], recovery.before["token"]) == ("h2", 2)
