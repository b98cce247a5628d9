"""buildcoord msg send|list|show|read|read-all|ack|archive|stats, driven in process."""

from __future__ import annotations

from typing import Any

from buildcoord.client import Client
from buildcoord.clock import FakeClock
from buildcoord.models import Message
from inprocess import RunCli


def send(operator: Client, recipient: str = "build2", **fields: Any) -> Message:
    """Send a message from build1 as the operator."""
    values: dict[str, Any] = {"type": "info", "subject": "hello", "body": "", **fields}
    return operator.send_message(sender="build1", recipient=recipient, **values)


def test_msg_send_stores_the_message_and_prints_its_id_last(
    run_cli: RunCli, operator: Client
) -> None:
    outcome = run_cli(
        "msg",
        "send",
        "--from",
        "build1",
        "--to",
        "build2",
        "--type",
        "warning",
        "--subject",
        "disk",
        "--body",
        "filling up",
    )
    message = operator.get_message(int(outcome.last_line))
    assert (message.sender, message.recipient, message.type) == ("build1", "build2", "warning")
    assert (message.subject, message.body) == ("disk", "filling up")


def test_msg_send_reads_the_body_from_stdin(run_cli: RunCli, operator: Client) -> None:
    outcome = run_cli(
        "msg",
        "send",
        "--from",
        "build1",
        "--to",
        "all",
        "--subject",
        "log",
        "--body",
        "-",
        input="line 1\nline 2\n",
    )
    assert operator.get_message(int(outcome.last_line)).body == "line 1\nline 2\n"


def test_msg_list_for_a_server_marks_unread_ones(run_cli: RunCli, operator: Client) -> None:
    read = send(operator, subject="seen")
    send(operator, subject="new")
    send(operator, recipient="build3", subject="not mine")
    operator.mark_message_read(read.id, reader="build2")
    lines = run_cli("msg", "list", "--to", "build2").stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f" {read.id}:")
    assert lines[1].startswith("*")


def test_msg_list_unread_leaves_out_read_messages(run_cli: RunCli, operator: Client) -> None:
    read = send(operator, subject="seen")
    send(operator, subject="new")
    operator.mark_message_read(read.id, reader="build2")
    stdout = run_cli("msg", "list", "--to", "build2", "--unread").stdout
    assert "new" in stdout
    assert "seen" not in stdout


def test_msg_read_marks_one_message_read(run_cli: RunCli, operator: Client) -> None:
    message = send(operator)
    assert "marked as read" in run_cli("msg", "read", str(message.id)).stdout
    assert operator.get_message(message.id).read is True
    assert "already" in run_cli("msg", "read", str(message.id)).stdout


def test_msg_read_all_for_one_server_leaves_others_unread(
    run_cli: RunCli, operator: Client
) -> None:
    send(operator)
    send(operator, recipient="build3")
    assert "Marked 1 messages" in run_cli("msg", "read-all", "--for", "build2").stdout
    assert operator.list_messages(recipient="build2", unread=True) == []
    assert len(operator.list_messages(recipient="build3", unread=True)) == 1


def test_msg_ack_records_the_acknowledgement(run_cli: RunCli, operator: Client) -> None:
    message = send(operator, ack_required=True)
    run_cli("msg", "ack", str(message.id), "--server", "build2")
    assert operator.get_message(message.id).acknowledged_by == ("build2",)


def test_msg_archive_moves_old_read_messages_aside(
    run_cli: RunCli, operator: Client, clock: FakeClock
) -> None:
    message = send(operator)
    operator.mark_message_read(message.id)
    clock.advance(8 * 86400)
    assert "Archived 1 messages" in run_cli("msg", "archive", "--days", "7").stdout
    assert [found.id for found in operator.list_messages(archived="yes")] == [message.id]


def test_msg_stats_counts_messages(run_cli: RunCli, operator: Client) -> None:
    send(operator, type="error")
    operator.mark_message_read(send(operator).id)
    stdout = run_cli("msg", "stats").stdout
    assert "Total messages: 2" in stdout
    assert "Unread: 1" in stdout
    assert "error: 1" in stdout


def test_msg_send_with_an_over_long_subject_is_one_error_line(
    run_cli: RunCli, operator: Client
) -> None:
    outcome = run_cli("msg", "send", "--from", "build1", "--to", "build2", "--subject", "s" * 101)
    assert "subject" in outcome.error
    assert operator.list_messages() == []


def test_msg_ack_of_an_unknown_message_is_one_error_line(run_cli: RunCli) -> None:
    assert "999" in run_cli("msg", "ack", "999", "--server", "build2").error
