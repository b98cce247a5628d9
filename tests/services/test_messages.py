"""Messages: validation, ordering, read state per recipient, acknowledgements, archiving, stats."""

from __future__ import annotations

from typing import Any

import pytest

from buildcoord.clock import FakeClock
from buildcoord.errors import Conflict, Forbidden, InvalidInput
from buildcoord.models import Message, MessageStats, Principal
from buildcoord.services.coordinator import Coordinator
from buildcoord.store import Store
from store_rows import StoreState

DAY = 24 * 3600


def send(coordinator: Coordinator, by: Principal, **fields: Any) -> Message:
    """Send an info message from build1 to build2, with any field overridden."""
    values: dict[str, Any] = {
        "sender": "build1",
        "recipient": "build2",
        "type": "info",
        "subject": "hello",
        "body": "a body",
    }
    values.update(fields)
    return coordinator.messages.send(by=by, **values)


def ids(messages: list[Message]) -> list[int]:
    """The ids of messages, in order."""
    return [message.id for message in messages]


# -- send -----------------------------------------------------------------------------------------


def test_it_stores_a_sent_message_unread(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    message = send(coordinator, operator, type="request", subject="disk", ack_required=True)

    assert (message.sender, message.recipient, message.type) == ("build1", "build2", "request")
    assert (message.subject, message.body, message.ack_required) == ("disk", "a body", True)
    assert message.created_at == clock.now()
    assert (message.read, message.read_by, message.acknowledged_by) == (False, (), ())
    assert message.archived_at is None


def test_it_accepts_a_subject_of_100_and_a_body_of_10000_characters(
    coordinator: Coordinator, operator: Principal
) -> None:
    message = send(coordinator, operator, subject="s" * 100, body="b" * 10_000)

    assert (len(message.subject), len(message.body)) == (100, 10_000)


def test_it_refuses_an_invalid_message_and_changes_nothing(
    coordinator: Coordinator,
    operator: Principal,
    store_state: StoreState,
    subtests: pytest.Subtests,
) -> None:
    before = store_state()
    cases: dict[str, dict[str, Any]] = {
        "unknown type": {"type": "debug"},
        "type in capitals": {"type": "INFO"},
        "subject over 100": {"subject": "s" * 101},
        "empty subject": {"subject": ""},
        "blank subject": {"subject": "   "},
        "body over 10000": {"body": "b" * 10_001},
        "sender with a space": {"sender": "build 1"},
        "empty sender": {"sender": ""},
        "sender with a slash": {"sender": "../etc"},
        "recipient with a space": {"recipient": "build 2"},
        "empty recipient": {"recipient": ""},
    }

    for case, fields in cases.items():
        with subtests.test(case=case), pytest.raises(InvalidInput):
            send(coordinator, operator, **fields)

    assert store_state() == before


def test_it_forbids_a_read_principal_to_send(
    coordinator: Coordinator, reader: Principal, store_state: StoreState
) -> None:
    before = store_state()

    with pytest.raises(Forbidden):
        send(coordinator, reader)

    assert store_state() == before


def test_it_forbids_an_agent_to_send_as_another_server(
    coordinator: Coordinator, build2: Principal, store_state: StoreState
) -> None:
    before = store_state()

    with pytest.raises(Forbidden):
        send(coordinator, build2, sender="build1")

    assert store_state() == before


def test_it_lets_an_agent_send_as_its_own_server(
    coordinator: Coordinator, store: Store, build1: Principal
) -> None:
    message = send(coordinator, build1, recipient="all")

    [event] = store.events.list_events(subject=f"message:{message.id}")
    assert (event.kind, event.actor) == ("message.sent", "agent:build1")


# -- list -----------------------------------------------------------------------------------------


def test_it_lists_errors_then_warnings_then_requests_then_info_each_oldest_first(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    sent: dict[str, list[int]] = {}
    for kind in ["info", "request", "warning", "error", "info", "error", "request", "warning"]:
        sent.setdefault(kind, []).append(send(coordinator, operator, type=kind).id)
        clock.advance(1)

    listed = coordinator.messages.list_messages(by=operator)

    assert ids(listed) == sent["error"] + sent["warning"] + sent["request"] + sent["info"]


def test_it_lists_a_servers_own_messages_and_those_to_all(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    to_build1 = send(coordinator, operator, sender="build2", recipient="build1")
    to_build2 = send(coordinator, operator, recipient="build2")
    to_all = send(coordinator, operator, recipient="all")

    assert ids(coordinator.messages.list_messages(by=build1)) == [to_build1.id, to_all.id]
    assert ids(coordinator.messages.list_messages(recipient="build2", by=operator)) == [
        to_build2.id,
        to_all.id,
    ]


def test_it_forbids_an_agent_to_read_another_servers_messages(
    coordinator: Coordinator, operator: Principal, build1: Principal
) -> None:
    send(coordinator, operator, recipient="build2")

    with pytest.raises(Forbidden):
        coordinator.messages.list_messages(recipient="build2", by=build1)


# -- read state -----------------------------------------------------------------------------------


def test_it_keeps_read_state_per_recipient_for_a_message_to_all(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    message = send(coordinator, operator, recipient="all")

    assert coordinator.messages.mark_read(message.id, by=build1) is True

    assert ids(coordinator.messages.list_messages(unread_only=True, by=build1)) == []
    assert ids(coordinator.messages.list_messages(unread_only=True, by=build2)) == [message.id]
    assert coordinator.messages.get(message.id, by=build1).read is True
    assert coordinator.messages.get(message.id, by=build2).read is False
    overall = coordinator.messages.get(message.id, by=operator)
    assert (overall.read, overall.read_by) == (False, ("build1",))


def test_it_counts_a_message_to_all_read_once_every_server_read_it(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    message = send(coordinator, operator, recipient="all")

    coordinator.messages.mark_read(message.id, by=build1)
    coordinator.messages.mark_read(message.id, by=build2)

    assert coordinator.messages.get(message.id, by=operator).read is True
    assert coordinator.messages.stats(by=operator).unread == 0


def test_it_reports_false_when_marking_an_already_read_message(
    coordinator: Coordinator, operator: Principal, build2: Principal
) -> None:
    message = send(coordinator, operator)

    assert coordinator.messages.mark_read(message.id, by=build2) is True
    assert coordinator.messages.mark_read(message.id, by=build2) is False


def test_it_refuses_to_mark_read_for_a_server_the_message_is_not_addressed_to(
    coordinator: Coordinator, operator: Principal, build1: Principal, store_state: StoreState
) -> None:
    message = send(coordinator, operator, recipient="build2")
    before = store_state()

    with pytest.raises(Conflict, match="addressed to build2, not build1"):
        coordinator.messages.mark_read(message.id, by=build1)

    assert store_state() == before


def test_it_marks_all_read_for_one_server_only(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    send(coordinator, operator, sender="build2", recipient="build1")
    to_all = send(coordinator, operator, recipient="all")
    to_build2 = send(coordinator, operator, recipient="build2")

    assert coordinator.messages.mark_all_read(reader="build1", by=operator) == 2

    assert coordinator.messages.list_messages(unread_only=True, by=build1) == []
    assert ids(coordinator.messages.list_messages(unread_only=True, by=build2)) == [
        to_all.id,
        to_build2.id,
    ]
    assert coordinator.messages.mark_all_read(reader="build1", by=operator) == 0


def test_it_marks_all_read_for_everyone(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    send(coordinator, operator, sender="build2", recipient="build1")
    send(coordinator, operator, recipient="all")
    send(coordinator, operator, recipient="build2")

    assert coordinator.messages.mark_all_read(by=operator) == 3

    assert coordinator.messages.list_messages(unread_only=True, by=build1) == []
    assert coordinator.messages.list_messages(unread_only=True, by=build2) == []
    assert coordinator.messages.stats(by=operator).unread == 0


# -- acknowledge ----------------------------------------------------------------------------------


def test_it_records_an_acknowledgement_and_marks_the_message_read_for_that_server(
    coordinator: Coordinator, operator: Principal, build2: Principal
) -> None:
    message = send(coordinator, operator, type="request", ack_required=True)

    acknowledged = coordinator.messages.acknowledge(message.id, server="build2", by=build2)

    assert acknowledged.acknowledged_by == ("build2",)
    assert acknowledged.read is True


def test_it_refuses_to_acknowledge_a_message_that_did_not_ask_for_it(
    coordinator: Coordinator, operator: Principal, build2: Principal, store_state: StoreState
) -> None:
    message = send(coordinator, operator)
    before = store_state()

    with pytest.raises(Conflict, match="does not ask for an acknowledgement"):
        coordinator.messages.acknowledge(message.id, server="build2", by=build2)

    assert store_state() == before


def test_it_refuses_an_acknowledgement_from_a_server_that_is_not_a_recipient(
    coordinator: Coordinator,
    operator: Principal,
    build1: Principal,
    build2: Principal,
    store_state: StoreState,
) -> None:
    message = send(coordinator, operator, recipient="build2", ack_required=True)
    before = store_state()

    with pytest.raises(Conflict, match="addressed to build2, not build1"):
        coordinator.messages.acknowledge(message.id, server="build1", by=build1)

    assert store_state() == before


def test_it_forbids_an_agent_to_acknowledge_as_another_server(
    coordinator: Coordinator,
    operator: Principal,
    build1: Principal,
    build2: Principal,
    store_state: StoreState,
) -> None:
    message = send(coordinator, operator, recipient="build2", ack_required=True)
    before = store_state()

    with pytest.raises(Forbidden):
        coordinator.messages.acknowledge(message.id, server="build2", by=build1)

    assert store_state() == before


def test_it_takes_acknowledgements_of_a_message_to_all_from_each_server(
    coordinator: Coordinator, operator: Principal, build1: Principal, build2: Principal
) -> None:
    message = send(coordinator, operator, recipient="all", ack_required=True)

    coordinator.messages.acknowledge(message.id, server="build1", by=build1)
    acknowledged = coordinator.messages.acknowledge(message.id, server="build2", by=build2)

    assert sorted(acknowledged.acknowledged_by) == ["build1", "build2"]


# -- archive --------------------------------------------------------------------------------------


def test_it_archives_only_read_messages_older_than_the_given_days(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build2: Principal
) -> None:
    old_read = send(coordinator, operator, subject="old read")
    old_unread = send(coordinator, operator, subject="old unread")
    clock.advance(20 * DAY)
    recent_read = send(coordinator, operator, subject="recent read")
    coordinator.messages.mark_read(old_read.id, by=build2)
    coordinator.messages.mark_read(recent_read.id, by=build2)
    clock.advance(11 * DAY)

    assert coordinator.messages.archive(days=30, by=operator) == 1

    archived = coordinator.messages.list_messages(archived=True, by=operator)
    assert ids(archived) == [old_read.id]
    assert archived[0].archived_at == clock.now()
    active = coordinator.messages.list_messages(by=operator)
    assert ids(active) == [old_unread.id, recent_read.id]


def test_it_uses_the_archive_days_setting_by_default(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build2: Principal
) -> None:
    message = send(coordinator, operator)
    coordinator.messages.mark_read(message.id, by=build2)
    clock.advance(coordinator.settings.archive_days * DAY - 1)
    assert coordinator.messages.archive() == 0

    clock.advance(2)

    assert coordinator.messages.archive() == 1


def test_it_never_archives_an_unread_message(
    coordinator: Coordinator, clock: FakeClock, operator: Principal
) -> None:
    send(coordinator, operator)
    clock.advance(365 * DAY)

    assert coordinator.messages.archive(days=0, by=operator) == 0
    assert coordinator.messages.list_messages(archived=True, by=operator) == []


def test_it_does_not_archive_a_message_to_all_until_every_server_read_it(
    coordinator: Coordinator,
    clock: FakeClock,
    operator: Principal,
    build1: Principal,
    build2: Principal,
) -> None:
    message = send(coordinator, operator, recipient="all")
    coordinator.messages.mark_read(message.id, by=build1)
    clock.advance(31 * DAY)
    assert coordinator.messages.archive(by=operator) == 0

    coordinator.messages.mark_read(message.id, by=build2)

    assert coordinator.messages.archive(by=operator) == 1


def test_it_keeps_archived_messages_queryable_and_deletes_nothing(
    coordinator: Coordinator, store: Store, clock: FakeClock, operator: Principal
) -> None:
    for kind in ["info", "error", "warning"]:
        send(coordinator, operator, type=kind)
    coordinator.messages.mark_all_read(by=operator)
    send(coordinator, operator)
    clock.advance(31 * DAY)
    before = coordinator.messages.stats(by=operator)

    assert coordinator.messages.archive(by=operator) == 3

    after = coordinator.messages.stats(by=operator)
    assert before.total + before.archived == after.total + after.archived == 4
    assert (after.total, after.archived) == (1, 3)
    every = coordinator.messages.list_messages(archived=None, by=operator)
    assert len(every) == 4
    assert {message.type for message in every if message.archived_at is not None} == {
        "info",
        "error",
        "warning",
    }


def test_it_refuses_negative_archive_days_and_archiving_by_an_agent(
    coordinator: Coordinator, build1: Principal
) -> None:
    with pytest.raises(InvalidInput):
        coordinator.messages.archive(days=-1)
    with pytest.raises(Forbidden):
        coordinator.messages.archive(by=build1)


# -- stats ----------------------------------------------------------------------------------------


def test_it_counts_total_unread_read_by_type_and_archived(
    coordinator: Coordinator, clock: FakeClock, operator: Principal, build2: Principal
) -> None:
    old = send(coordinator, operator, type="warning")
    coordinator.messages.mark_read(old.id, by=build2)
    clock.advance(31 * DAY)
    coordinator.messages.archive(by=operator)
    first = send(coordinator, operator, type="error")
    send(coordinator, operator, type="error")
    send(coordinator, operator, type="info")
    send(coordinator, operator, type="request")
    coordinator.messages.mark_read(first.id, by=build2)

    stats = coordinator.messages.stats(by=operator)

    assert stats == MessageStats(
        total=4,
        unread=3,
        read=1,
        by_type={"error": 2, "info": 1, "request": 1},
        archived=1,
    )


# -- events ---------------------------------------------------------------------------------------


def test_it_records_an_event_for_every_change_of_a_message(
    coordinator: Coordinator,
    store: Store,
    clock: FakeClock,
    operator: Principal,
    build2: Principal,
) -> None:
    message = send(coordinator, operator, ack_required=True)
    coordinator.messages.mark_read(message.id, by=build2)
    coordinator.messages.acknowledge(message.id, server="build2", by=build2)
    clock.advance(31 * DAY)
    coordinator.messages.archive(by=operator)

    kinds = [event.kind for event in store.events.list_events(subject=f"message:{message.id}")]

    assert kinds == ["message.sent", "message.read", "message.acknowledged", "message.archived"]
